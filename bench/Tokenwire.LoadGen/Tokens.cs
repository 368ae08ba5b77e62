using System.Buffers;
using System.Globalization;
using System.Text.Json;
using Tokenwire.Protocol;
using Tokenwire.Protocol.MsgPack;

namespace Tokenwire.LoadGen;

/// <summary>One token as the publisher sends it: its data (see <see cref="Payload"/>) and what its extras carry.</summary>
/// <param name="Seq">The publisher's sequence number of the token.</param>
/// <param name="Response">Which response the token belongs to (<c>Seq / tokensPerResponse</c>).</param>
/// <param name="Data">The data string.</param>
/// <param name="SentAtMs">The <c>timestamp</c> header: wall-clock milliseconds when the token was made.</param>
/// <param name="Name">The message name: <c>token</c>, or <c>start</c> / <c>stop</c> for a response's boundaries (sent without data).</param>
internal readonly record struct Token(long Seq, long Response, string Data, long SentAtMs, string Name = TokenShape.Name)
{
    public bool IsBoundary => Name != TokenShape.Name;

    /// <summary>The message's data: none for a boundary, as the seed's start and stop carry none.</summary>
    public string? MessageData => IsBoundary ? null : Data;
}

/// <summary>
/// The shape of a token on the wire, the same for every target. The default is the seed's: <c>name: "token"</c>,
/// <c>data</c>, and <c>extras.headers</c> with <c>responseId</c> plus a <c>timestamp</c> (<c>--headers N</c> counts
/// every header, responseId included; headers beyond two are <c>x-header-K: "value-K"</c>). As the seed's publisher
/// does, each response begins with a <c>start</c> message and ends with a <c>stop</c> one, both with no data and the same
/// headers (so the server's response tracking sees responses end, as it does in production); <c>--unended</c> leaves them
/// out. <c>--bare</c> is the older token: name and data only, no responses.
/// </summary>
internal sealed class TokenShape
{
    public const string Name = "token";
    public const string StartName = "start";
    public const string StopName = "stop";
    public const string ResponseIdHeader = "responseId";
    public const string TimestampHeader = "timestamp";

    private readonly bool _unended;
    private readonly string[] _extraNames;
    private readonly string[] _extraValues;

    public TokenShape(LoadOptions options)
    {
        Bare = options.Bare;
        Boundaries = !options.Bare && !options.Unended && options.Pattern == "token";
        _unended = !options.Bare && options.Unended;
        Headers = options.Bare ? 0 : options.Headers;
        TokensPerResponse = options.TokensPerResponse;
        var extra = Math.Max(0, Headers - 2);
        _extraNames = [.. Enumerable.Range(3, extra).Select(k => $"x-header-{k}")];
        _extraValues = [.. Enumerable.Range(3, extra).Select(k => $"value-{k}")];
    }

    public bool Bare { get; }

    /// <summary>Headers in <c>extras.headers</c>, responseId included (0 when bare).</summary>
    public int Headers { get; }

    public int TokensPerResponse { get; }

    /// <summary>True when each response is framed by <c>start</c> and <c>stop</c> messages (not bare, not <c>--unended</c>).</summary>
    public bool Boundaries { get; }

    /// <summary>What the table calls this shape.</summary>
    public string Label => Bare ? "bare" : $"seed h{Headers}{(_unended ? " unended" : "")}";

    /// <summary>The <c>start</c> message due before token <paramref name="seq"/>, or null.</summary>
    public Token? StartBefore(long seq) => Boundaries && seq % TokensPerResponse == 0 ? Boundary(StartName, seq) : null;

    /// <summary>The <c>stop</c> message due after token <paramref name="seq"/>, or null.</summary>
    public Token? StopAfter(long seq) => Boundaries && (seq + 1) % TokensPerResponse == 0 ? Boundary(StopName, seq) : null;

    /// <summary>A start or stop of the response token <paramref name="seq"/> belongs to (no data, its own timestamp header).</summary>
    private Token Boundary(string name, long seq) =>
        new(-1, seq / TokensPerResponse, string.Empty, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), name);

    /// <summary>The responseId of a publisher's response: as long as the seed's <c>'resp-' + Date.now()</c>.</summary>
    public static string ResponseId(int publisher, long response) =>
        string.Create(CultureInfo.InvariantCulture, $"resp-{publisher}-{response:D12}");

    /// <summary>The publisher a <see cref="ResponseId"/> names.</summary>
    public static bool TryParseResponseId(ReadOnlySpan<char> responseId, out int publisher)
    {
        publisher = 0;
        if (!responseId.StartsWith("resp-")) return false;
        var rest = responseId[5..];
        var dash = rest.IndexOf('-');
        return dash > 0 && int.TryParse(rest[..dash], NumberStyles.None, CultureInfo.InvariantCulture, out publisher);
    }

    /// <summary>True when <paramref name="responseId"/> is <see cref="ResponseId"/> of that publisher and response (no allocation).</summary>
    public static bool IsResponseId(ReadOnlySpan<char> responseId, int publisher, long response)
    {
        Span<char> expected = stackalloc char[48];
        return expected.TryWrite(CultureInfo.InvariantCulture, $"resp-{publisher}-{response:D12}", out var n) && responseId.SequenceEqual(expected[..n]);
    }

    public Token Create(int publisher, long seq, int size, bool lineTerminated) =>
        new(seq, seq / TokensPerResponse, Payload.Create(publisher, seq, TokensPerResponse, size, lineTerminated), Bare ? 0 : DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());

    /// <summary>The token's extras in <paramref name="format"/> (null when bare). Not thread-safe: one shape per publisher.</summary>
    public OpaqueValue? Extras(int publisher, Token token, WireFormat format)
    {
        if (Bare) return null;
        _scratch.ResetWrittenCount();
        var responseId = ResponseId(publisher, token.Response);
        if (format == WireFormat.MsgPack)
        {
            var w = new MsgPackWriter(_scratch);
            w.WriteMapHeader(1);
            w.WriteString("headers"u8);
            w.WriteMapHeader(Headers);
            w.WriteString("responseId"u8);
            w.Write(responseId);
            if (Headers >= 2)
            {
                w.WriteString("timestamp"u8);
                w.Write(token.SentAtMs);
            }

            for (var i = 0; i < _extraNames.Length; i++)
            {
                w.Write(_extraNames[i]);
                w.Write(_extraValues[i]);
            }

            return OpaqueValue.FromMsgPack(_scratch.WrittenSpan);
        }

        _json ??= new Utf8JsonWriter(_scratch);
        _json.Reset(_scratch);
        _json.WriteStartObject();
        _json.WriteStartObject("headers"u8);
        _json.WriteString("responseId"u8, responseId);
        if (Headers >= 2) _json.WriteNumber("timestamp"u8, token.SentAtMs);
        for (var i = 0; i < _extraNames.Length; i++) _json.WriteString(_extraNames[i], _extraValues[i]);
        _json.WriteEndObject();
        _json.WriteEndObject();
        _json.Flush();
        return OpaqueValue.FromJson(_scratch.WrittenSpan);
    }

    /// <summary>The token as a SignalR hub argument: the same fields as an object.</summary>
    public SignalRToken ToSignalR(int publisher, Token token)
    {
        var headers = new Dictionary<string, object?>(Headers, StringComparer.Ordinal) { [ResponseIdHeader] = ResponseId(publisher, token.Response) };
        if (Headers >= 2) headers[TimestampHeader] = token.SentAtMs;
        for (var i = 0; i < _extraNames.Length; i++) headers[_extraNames[i]] = _extraValues[i];
        return new SignalRToken(token.Name, token.MessageData, new SignalRExtras(headers));
    }

    private readonly ArrayBufferWriter<byte> _scratch = new(256);
    private Utf8JsonWriter? _json;
}

/// <summary>
/// The token as the SignalR baseline carries it (JSON hub protocol: <c>{name, data, extras: {headers}}</c>; MessagePack:
/// the same map with the property names). Public: MessagePack-CSharp's contractless resolver serialises public types only.
/// </summary>
public sealed record SignalRToken(string Name, string? Data, SignalRExtras? Extras);

/// <summary>A SignalR token's extras; header values arrive as <see cref="JsonElement"/> (JSON) or primitives (MessagePack).</summary>
public sealed record SignalRExtras(Dictionary<string, object?> Headers)
{
    public string? ResponseId => Headers.TryGetValue(TokenShape.ResponseIdHeader, out var v) ? v switch
    {
        JsonElement { ValueKind: JsonValueKind.String } e => e.GetString(),
        string s => s,
        _ => null,
    } : null;
}
