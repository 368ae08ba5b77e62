// MessageDataEncoding — the encoding steps of a message's data (the Ably "encoding" field, e.g. "json/base64") that
// both wire formats handle the same way. Lives outside ProtocolCodec so the codecs' static readers and writers can
// use it; ProtocolCodec's protected NormaliseBase64 and AppendEncoding forward here for codecs derived from it.

namespace Tokenwire.Protocol.Codecs;

/// <summary>Shared handling of a message's data <c>encoding</c> steps.</summary>
internal static class MessageDataEncoding
{
    /// <summary>Normalises decoded message data: a trailing <c>base64</c> step becomes bytes, so both formats relay the same payload.</summary>
    public static void NormaliseBase64(Message message)
    {
        if (message.Data is not string text || message.Encoding is null) return;
        var encoding = message.Encoding;
        string? rest;
        if (encoding == "base64") rest = null;
        else if (encoding.EndsWith("/base64", StringComparison.Ordinal)) rest = encoding[..^7];
        else return;

        var bytes = new byte[(text.Length * 3 / 4) + 3];
        if (!Convert.TryFromBase64String(text, bytes, out var written))
        {
            throw new AblyException(ErrorCodes.InvalidMessageData, 400, "Invalid base64 message data");
        }

        message.Data = written == bytes.Length ? bytes : bytes.AsSpan(0, written).ToArray();
        message.Encoding = rest;
    }

    /// <summary>Appends an encoding step.</summary>
    public static string AppendEncoding(string? encoding, string step) =>
        string.IsNullOrEmpty(encoding) ? step : encoding + "/" + step;
}
