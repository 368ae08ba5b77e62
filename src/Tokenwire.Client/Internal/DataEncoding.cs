using System.Text;
using System.Text.Json;
using Tokenwire.Protocol;

namespace Tokenwire.Client.Internal;

/// <summary>
/// Message data encoding (RSL4) and decoding (RSL6). Strings and bytes travel as they are (the codecs add and strip
/// <c>base64</c> for JSON); JSON values travel as strings with the <c>json</c> step and come back as <see cref="JsonElement"/>.
/// </summary>
internal static class DataEncoding
{
    /// <summary>A copy of <paramref name="message"/> whose data the codecs can write: a string or bytes, with its encoding.</summary>
    public static Message ForWire(Message message)
    {
        var m = message.Clone();
        m.Data = Encode(message.Data, message.Encoding, out var encoding);
        m.Encoding = encoding;
        m.Action ??= MessageAction.Create;
        return m;
    }

    /// <summary>Turns any supported data value into a string or bytes, appending <c>json</c> for structured values.</summary>
    public static object? Encode(object? data, string? encoding, out string? resultEncoding)
    {
        resultEncoding = encoding;
        switch (data)
        {
            case null:
            case string:
            case byte[]:
                return data;
            case ReadOnlyMemory<byte> rom:
                return rom.ToArray();
            case Memory<byte> mem:
                return mem.ToArray();
            case ArraySegment<byte> seg:
                return seg.ToArray();
            case JsonElement element:
                resultEncoding = Append(encoding, "json");
                return element.GetRawText();
            case JsonDocument document:
                resultEncoding = Append(encoding, "json");
                return document.RootElement.GetRawText();
            default:
                resultEncoding = Append(encoding, "json");
                return JsonSerializer.Serialize(data, data.GetType());
        }
    }

    public static object? EncodeTyped<T>(T data, JsonSerializerOptions? options, out string? encoding)
    {
        encoding = null;
        return data switch
        {
            null => null,
            string or byte[] or ReadOnlyMemory<byte> or Memory<byte> or ArraySegment<byte> or JsonElement or JsonDocument => Encode(data, null, out encoding),
            _ => EncodeJson(JsonSerializer.Serialize(data, options), out encoding),
        };
    }

    private static string EncodeJson(string json, out string? encoding)
    {
        encoding = "json";
        return json;
    }

    /// <summary>
    /// Prepares a message received from the server (realtime or REST) for the application: a missing <c>version</c> is
    /// filled from <c>serial</c> and <c>timestamp</c> (TM2s1, TM2s2), then the data is decoded.
    /// </summary>
    public static void DecodeInbound(Message m)
    {
        if (m.Version is null && m.Serial is not null) m.Version = new MessageVersion { Serial = m.Serial, Timestamp = m.Timestamp };
        Decode(m);
    }

    /// <summary>Applies the decodable steps of <see cref="Message.Encoding"/> from the right: <c>json</c>, <c>utf-8</c>, <c>base64</c>.</summary>
    /// <remarks>An unknown step (a cipher) stops decoding and stays in <see cref="Message.Encoding"/> (RSL6b).</remarks>
    public static void Decode(Message m)
    {
        var encoding = m.Encoding;
        if (string.IsNullOrEmpty(encoding)) return;
        var data = m.Data;
        try
        {
            while (!string.IsNullOrEmpty(encoding))
            {
                var slash = encoding.LastIndexOf('/');
                var step = slash < 0 ? encoding : encoding[(slash + 1)..];
                if (step == "json")
                {
                    data = data switch
                    {
                        string s => ParseJson(Encoding.UTF8.GetBytes(s)),
                        byte[] b => ParseJson(b),
                        _ => data,
                    };
                }
                else if (step == "utf-8" && data is byte[] bytes)
                {
                    data = Encoding.UTF8.GetString(bytes);
                }
                else if (step == "base64" && data is string b64)
                {
                    data = Convert.FromBase64String(b64);
                }
                else
                {
                    break;
                }

                encoding = slash < 0 ? null : encoding[..slash];
            }
        }
        catch (Exception e) when (e is JsonException or FormatException)
        {
            // RSL6b: leave the data as it was, with its encoding, rather than failing delivery.
            return;
        }

        m.Data = data;
        m.Encoding = string.IsNullOrEmpty(encoding) ? null : encoding;
    }

    private static JsonElement ParseJson(byte[] utf8)
    {
        using var document = JsonDocument.Parse(utf8);
        return document.RootElement.Clone();
    }

    private static string Append(string? encoding, string step) => string.IsNullOrEmpty(encoding) ? step : encoding + "/" + step;
}
