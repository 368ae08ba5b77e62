using System.Text;
using System.Text.Json;
using Tokenwire.Protocol;
using Tokenwire.Protocol.MsgPack;

namespace Tokenwire.Server.Observability;

/// <summary>
/// Reads the few <c>extras.headers</c> entries observability needs, in one pass over the extras in the form they hold
/// (JSON or MessagePack: a msgpack token is never converted to JSON just to be observed) and without building a
/// document or allocating: a response id (copied into the caller's buffer) and whether a <c>status</c> header holds
/// one of the end statuses.
/// </summary>
internal static class MessageHeaders
{
    /// <summary>Scans <paramref name="extras"/> in the form it already has (see the JSON overload for the parameters).</summary>
    public static void Scan(OpaqueValue extras, string idHeader, Span<char> idBuffer, List<string> endStatuses, out int idLength, out bool endStatus)
    {
        if (extras.HasJson) Scan(extras.Json, idHeader, idBuffer, endStatuses, out idLength, out endStatus);
        else ScanMsgPack(extras.MsgPack, idHeader, idBuffer, endStatuses, out idLength, out endStatus);
    }

    /// <summary>Scans extras encoded as MessagePack (a map with a <c>headers</c> map); the same outputs as the JSON scan.</summary>
    public static void ScanMsgPack(ReadOnlySpan<byte> extrasMsgPack, string idHeader, Span<char> idBuffer, List<string> endStatuses, out int idLength, out bool endStatus)
    {
        idLength = 0;
        endStatus = false;
        var reader = new MsgPackReader(extrasMsgPack);
        try
        {
            if (reader.PeekType() != MsgPackType.Map) return;
            for (var fields = reader.ReadMapHeader(); fields > 0; fields--)
            {
                var isHeaders = false;
                if (reader.PeekType() == MsgPackType.String) isHeaders = reader.ReadStringBytes().SequenceEqual("headers"u8);
                else reader.Skip(); // a key that is not a string
                if (!isHeaders || reader.PeekType() != MsgPackType.Map)
                {
                    reader.Skip(); // the value
                    continue;
                }

                for (var headers = reader.ReadMapHeader(); headers > 0; headers--)
                {
                    if (reader.PeekType() != MsgPackType.String)
                    {
                        reader.Skip();
                        reader.Skip();
                        continue;
                    }

                    var name = reader.ReadStringBytes();
                    if (reader.PeekType() != MsgPackType.String)
                    {
                        reader.Skip();
                        continue;
                    }

                    var value = reader.ReadStringBytes();
                    if (Utf8Equals(name, idHeader))
                    {
                        var chars = Encoding.UTF8.GetCharCount(value);
                        idLength = chars > idBuffer.Length ? -1 : Encoding.UTF8.GetChars(value, idBuffer);
                    }
                    else if (name.SequenceEqual("status"u8))
                    {
                        foreach (var status in endStatuses)
                        {
                            if (Utf8Equals(value, status)) endStatus = true;
                        }
                    }
                }

                return;
            }
        }
        catch (ProtocolException)
        {
            // Extras are checked when published; a value that still does not read simply names no response.
        }
    }

    private static bool Utf8Equals(ReadOnlySpan<byte> utf8, string text)
    {
        if (utf8.Length > 1024) return false;
        Span<char> chars = stackalloc char[utf8.Length];
        return Encoding.UTF8.TryGetChars(utf8, chars, out var n) && chars[..n].SequenceEqual(text);
    }

    /// <summary>Scans <paramref name="extrasJson"/>.</summary>
    /// <param name="extrasJson">The message's extras as JSON.</param>
    /// <param name="idHeader">The response id header (<c>responseId</c>).</param>
    /// <param name="idBuffer">Where the response id's characters go.</param>
    /// <param name="endStatuses">Status values that end a response.</param>
    /// <param name="idLength">The response id's length; 0 when absent, -1 when longer than the buffer.</param>
    /// <param name="endStatus">True when the status header holds one of <paramref name="endStatuses"/>.</param>
    public static void Scan(ReadOnlySpan<byte> extrasJson, string idHeader, Span<char> idBuffer, List<string> endStatuses, out int idLength, out bool endStatus)
    {
        idLength = 0;
        endStatus = false;
        if (extrasJson.IndexOf("\"headers\""u8) < 0) return;
        var reader = new Utf8JsonReader(extrasJson);
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject) return;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var isHeaders = reader.ValueTextEquals("headers"u8);
                reader.Read();
                if (!isHeaders || reader.TokenType != JsonTokenType.StartObject)
                {
                    reader.Skip();
                    continue;
                }

                while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                {
                    var isId = reader.ValueTextEquals(idHeader);
                    var isStatus = !isId && reader.ValueTextEquals("status"u8);
                    reader.Read();
                    if (reader.TokenType == JsonTokenType.String)
                    {
                        if (isId)
                        {
                            var length = reader.HasValueSequence ? reader.ValueSequence.Length : reader.ValueSpan.Length;
                            idLength = length > idBuffer.Length ? -1 : reader.CopyString(idBuffer);
                        }
                        else if (isStatus)
                        {
                            foreach (var status in endStatuses)
                            {
                                if (reader.ValueTextEquals(status)) endStatus = true;
                            }
                        }
                    }

                    reader.Skip();
                }

                return;
            }
        }
        catch (JsonException)
        {
        }
    }
}
