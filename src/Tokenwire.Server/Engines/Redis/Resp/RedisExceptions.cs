// RESP client — stands in for StackExchange.Redis, which cannot be restored from this project's package mirror
// (its dependency Pipelines.Sockets.Unofficial is missing).
//
// The exceptions: every failure of the client derives from RedisException, so a caller that must NACK a publish
// when Redis cannot take it catches one type.

namespace Tokenwire.Server.Engines.Redis.Resp;

/// <summary>Base of every error raised by the RESP client.</summary>
internal class RedisException : Exception
{
    /// <summary>Creates an exception with no message.</summary>
    public RedisException() { }

    /// <summary>Creates an exception with a message.</summary>
    /// <param name="message">What went wrong.</param>
    public RedisException(string message) : base(message) { }

    /// <summary>Creates an exception with a message and a cause.</summary>
    /// <param name="message">What went wrong.</param>
    /// <param name="innerException">The cause.</param>
    public RedisException(string message, Exception? innerException) : base(message, innerException) { }
}

/// <summary>Redis answered with an error reply (<c>-ERR ...</c>, <c>-WRONGTYPE ...</c>, <c>-NOSCRIPT ...</c>).</summary>
internal sealed class RedisServerException : RedisException
{
    /// <summary>Creates an exception with no message.</summary>
    public RedisServerException() { }

    /// <summary>Creates an exception for an error reply.</summary>
    /// <param name="message">The error reply text, e.g. <c>ERR unknown command 'FOO'</c>.</param>
    public RedisServerException(string message) : base(message) { }

    /// <summary>Creates an exception with a message and a cause.</summary>
    /// <param name="message">The error reply text.</param>
    /// <param name="innerException">The cause.</param>
    public RedisServerException(string message, Exception? innerException) : base(message, innerException) { }

    /// <summary>The error's first word, by Redis convention its kind: <c>ERR</c>, <c>WRONGTYPE</c>, <c>NOSCRIPT</c>, ...</summary>
    public string ErrorPrefix
    {
        get
        {
            var space = Message.IndexOf(' ', StringComparison.Ordinal);
            return space < 0 ? Message : Message[..space];
        }
    }
}

/// <summary>
/// The connection to Redis could not be made, or broke while the command was pending: the command may or may not
/// have been executed by the server.
/// </summary>
internal class RedisConnectionException : RedisException
{
    /// <summary>Creates an exception with no message.</summary>
    public RedisConnectionException() { }

    /// <summary>Creates an exception with a message.</summary>
    /// <param name="message">What went wrong.</param>
    public RedisConnectionException(string message) : base(message) { }

    /// <summary>Creates an exception with a message and a cause.</summary>
    /// <param name="message">What went wrong.</param>
    /// <param name="innerException">The cause.</param>
    public RedisConnectionException(string message, Exception? innerException) : base(message, innerException) { }
}

/// <summary>
/// A command got no reply within the command timeout. If it had been sent, the connection is considered broken
/// (its reply stream can no longer be trusted), every other pending command on it fails, and the next command
/// reconnects. The command may or may not have been executed by the server.
/// </summary>
internal sealed class RedisTimeoutException : RedisConnectionException
{
    /// <summary>Creates an exception with no message.</summary>
    public RedisTimeoutException() { }

    /// <summary>Creates an exception with a message.</summary>
    /// <param name="message">What timed out.</param>
    public RedisTimeoutException(string message) : base(message) { }

    /// <summary>Creates an exception with a message and a cause.</summary>
    /// <param name="message">What timed out.</param>
    /// <param name="innerException">The cause.</param>
    public RedisTimeoutException(string message, Exception? innerException) : base(message, innerException) { }
}

/// <summary>The server sent bytes that are not valid RESP2, or a length beyond the client's limits.</summary>
internal sealed class RedisProtocolException : RedisException
{
    /// <summary>Creates an exception with no message.</summary>
    public RedisProtocolException() { }

    /// <summary>Creates an exception with a message.</summary>
    /// <param name="message">What was wrong with the data.</param>
    public RedisProtocolException(string message) : base(message) { }

    /// <summary>Creates an exception with a message and a cause.</summary>
    /// <param name="message">What was wrong with the data.</param>
    /// <param name="innerException">The cause.</param>
    public RedisProtocolException(string message, Exception? innerException) : base(message, innerException) { }
}
