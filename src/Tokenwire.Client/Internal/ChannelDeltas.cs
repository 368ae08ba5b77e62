using System.Text;
using System.Text.Json;
using Tokenwire.Protocol;
using Tokenwire.Protocol.Delta;

namespace Tokenwire.Client.Internal;

/// <summary>
/// A channel's delta decoding (RTL19–RTL21), for channels attached with the <c>delta=vcdiff</c> param: the server then
/// sends a message whose payload it can express as a change to the previous one as a VCDIFF delta (encoding step
/// <c>vcdiff</c>, <c>extras.delta.from</c> naming the message it applies to). Each message's payload, once its
/// <c>base64</c> and <c>vcdiff</c> steps are undone, is kept as the base of the next (as ably-js keeps it); the remaining
/// steps (<c>utf-8</c>, <c>json</c>) are left to the usual decoding. A delta that names another message than the last one
/// received, or that does not apply, fails its frame with 40018: the channel then re-attaches from the last frame it
/// delivered (RTL18), and the server resumes with a whole message. Loop only.
/// </summary>
internal sealed class ChannelDeltas
{
    private object? _lastPayload;
    private string? _lastId;

    /// <summary>Deltas applied so far (tests and diagnostics).</summary>
    public int Applied { get; private set; }

    /// <summary>
    /// Undoes the <c>base64</c> and <c>vcdiff</c> steps of every message of <paramref name="frame"/> (ids filled in
    /// already), in order; false, with the frame left undelivered, when a delta cannot be applied.
    /// </summary>
    public bool TryDecode(ProtocolMessage frame, out ErrorInfo? error)
    {
        error = null;
        foreach (var m in frame.Messages!)
        {
            var data = m.Data;
            var steps = m.Encoding is { Length: > 0 } encoding ? encoding.Split('/') : [];
            var remaining = steps.Length;
            while (remaining > 0)
            {
                var step = steps[remaining - 1];
                if (step == "base64" && data is string text)
                {
                    data = Convert.FromBase64String(text);
                }
                else if (step == "vcdiff")
                {
                    if (!TryApply(m, data, out data, out error)) return false;
                    Applied++;
                }
                else
                {
                    break;
                }

                remaining--;
            }

            _lastPayload = data;
            _lastId = m.Id;
            m.Data = data;
            m.Encoding = remaining == 0 ? null : string.Join('/', steps, 0, remaining);
        }

        return true;
    }

    private bool TryApply(Message m, object? delta, out object? target, out ErrorInfo? error)
    {
        target = null;
        var from = DeltaFrom(m);
        // RTL20: a delta applies to the message received just before it; anything else means a message was missed.
        if (from is null || from != _lastId || delta is not byte[] bytes)
        {
            error = DecodeFailure($"the delta applies to message '{from}', but the last message received was '{_lastId}'");
            return false;
        }

        var source = _lastPayload switch
        {
            byte[] b => b,
            string s => Encoding.UTF8.GetBytes(s),
            _ => [],
        };
        try
        {
            target = VcdiffDecoder.Decode(source, bytes);
            error = null;
            return true;
        }
        catch (InvalidDataException e)
        {
            error = DecodeFailure(e.Message);
            return false;
        }
    }

    private static string? DeltaFrom(Message m)
    {
        if (m.Extras is null) return null;
        var extras = m.Extras.ToJsonElement();
        return extras.ValueKind == JsonValueKind.Object && extras.TryGetProperty("delta", out var delta) && delta.ValueKind == JsonValueKind.Object
            && delta.TryGetProperty("from", out var from) && from.ValueKind == JsonValueKind.String ? from.GetString() : null;
    }

    private static ErrorInfo DecodeFailure(string why) => new(40018, 400, $"Delta decoding failed: {why}; re-attaching to receive whole messages");
}
