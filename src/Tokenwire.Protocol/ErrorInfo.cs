namespace Tokenwire.Protocol;

/// <summary>
/// An Ably error as it travels on the wire: <c>message</c>, <c>code</c> and <c>statusCode</c> are all mandatory
/// (ably-js rejects an error object that lacks any of them).
/// </summary>
/// <param name="Code">Ably error code, see <see cref="ErrorCodes"/>.</param>
/// <param name="StatusCode">HTTP-like status code.</param>
/// <param name="Message">Human-readable message.</param>
public sealed record ErrorInfo(int Code, int StatusCode, string Message)
{
    /// <summary>Link to the error's help page; defaults to Ably's help URL for the code.</summary>
    public string Href => $"https://help.ably.io/error/{Code}";

    /// <inheritdoc/>
    public override string ToString() => $"[{Code}/{StatusCode}] {Message}";
}

/// <summary>An exception that carries an Ably <see cref="ErrorInfo"/>.</summary>
public class AblyException : Exception
{
    /// <summary>Creates the exception.</summary>
    public AblyException(ErrorInfo error, Exception? inner = null) : base(error.Message, inner) => Error = error;

    /// <summary>Creates the exception from its parts.</summary>
    public AblyException(int code, int statusCode, string message) : this(new ErrorInfo(code, statusCode, message)) { }

    /// <summary>The error.</summary>
    public ErrorInfo Error { get; }

    /// <summary>Shortcut for <see cref="ErrorInfo.Code"/>.</summary>
    public int Code => Error.Code;
}

/// <summary>A frame or body that could not be decoded.</summary>
public sealed class ProtocolException : AblyException
{
    /// <summary>Creates a decode error with code 40000.</summary>
    public ProtocolException(string message, Exception? inner = null)
        : base(new ErrorInfo(ErrorCodes.BadRequest, 400, message), inner) { }
}
