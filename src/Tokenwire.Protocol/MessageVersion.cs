namespace Tokenwire.Protocol;

/// <summary>
/// The version of a mutable message (Ably spec TM2s): what the newest operation on it was (update, delete, append).
/// A message's versions sort by <see cref="Serial"/> as plain strings, after the message's own serial.
/// </summary>
public sealed class MessageVersion
{
    /// <summary>Serial of the operation that made this version (the message's own serial for the original).</summary>
    public string? Serial { get; set; }

    /// <summary>When the operation was ordered, milliseconds since the Unix epoch.</summary>
    public long? Timestamp { get; set; }

    /// <summary>The client that made the operation.</summary>
    public string? ClientId { get; set; }

    /// <summary>Why (free text from the operation).</summary>
    public string? Description { get; set; }

    /// <summary>Free-form metadata of the operation (a map of strings in Ably's API), relayed as given.</summary>
    public OpaqueValue? Metadata { get; set; }

    /// <summary>A copy.</summary>
    public MessageVersion Clone() => (MessageVersion)MemberwiseClone();
}
