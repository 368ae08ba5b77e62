namespace Tokenwire.Protocol;

/// <summary>The two wire formats Ably clients speak.</summary>
public enum WireFormat
{
    /// <summary><c>format=json</c>: text frames, <c>application/json</c>.</summary>
    Json = 0,
    /// <summary><c>format=msgpack</c>: binary frames, <c>application/x-msgpack</c>.</summary>
    MsgPack = 1,
}
