using System.Text.Json;
using Tokenwire.Protocol;

namespace Tokenwire.Client;

/// <summary>
/// Who changes a message and why (Ably's <c>MessageOperation</c>, MOP2): sent as the operation's <c>version</c> and
/// delivered back in <see cref="Message.Version"/>. Every field is optional.
/// </summary>
public sealed record MessageOperation
{
    /// <summary>The client making the change. Default: null (the server uses the connection's or key's clientId).</summary>
    public string? ClientId { get; init; }

    /// <summary>Why (free text). Default: null.</summary>
    public string? Description { get; init; }

    /// <summary>Free-form string metadata of the change. Default: null.</summary>
    public IReadOnlyDictionary<string, string>? Metadata { get; init; }

    internal MessageVersion ToVersion() => new()
    {
        ClientId = ClientId,
        Description = Description,
        Metadata = Metadata is null ? null : OpaqueValue.FromJson(JsonSerializer.SerializeToUtf8Bytes(Metadata)),
    };
}

/// <summary>The outcome of an update, delete or append (UDR2).</summary>
/// <param name="VersionSerial">
/// The serial of the version the operation made: it sorts (as a plain string) after the message's serial and every
/// earlier version, and is what subscribers see as <c>message.Version.Serial</c>. Null if the server did not say.
/// </param>
public sealed record UpdateDeleteResult(string? VersionSerial);
