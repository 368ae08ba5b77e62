using Tokenwire.Client;
using Tokenwire.Protocol;

namespace Tokenwire.AI;

/// <summary>
/// Message-per-response (<see cref="TokenStreamPattern.MessagePerResponse"/>): one message per response, and the
/// operations on it. What each delivery does:
/// <list type="bullet">
/// <item><c>message.create</c>: a new response (its text, if any, is the first token).</item>
/// <item><c>message.append</c>: the fragment is a token (<see cref="ResponseUpdateKind.TokenAppended"/>).</item>
/// <item><c>message.update</c>: the whole text so far (a late joiner's, a resumed client's or history's first sight, or
/// the publisher's recovery). When it extends the text already rebuilt, the new part is a token; otherwise it replaces
/// the text (<see cref="ResponseUpdateKind.Replaced"/>).</item>
/// <item><c>message.delete</c>: the response is deleted (<see cref="ResponseUpdateKind.Deleted"/>) and complete.</item>
/// <item>The status header <c>complete</c> or <c>cancelled</c> completes the response; later appends are ignored, a later
/// update (an edit) still applies.</item>
/// <item><c>message.summary</c>: the message's annotation summary (feedback, reactions) changed
/// (<see cref="ResponseUpdateKind.Annotated"/>, <see cref="ResponseSnapshot.Annotations"/>).</item>
/// </list>
/// Every delivery carries the message's serial and its version serial; versions sort as plain strings, so one at or below
/// the version already applied (rewind, history or resume overlapping live delivery) is dropped as a duplicate. This is
/// the same rule <c>@ably/ai-transport</c>'s decoder applies.
/// </summary>
public sealed partial class ResponseAssembler
{
    // Message-per-response: message serial → response id, for the responses in _responses.
    private readonly Dictionary<string, string> _serials = new(StringComparer.Ordinal);

    private bool ApplyResponseMessage(Message message)
    {
        if (message.Action is MessageAction.Meta || message.Serial is not { } serial) return false;
        if (message.Action is MessageAction.Summary) return ApplySummary(serial, message); // no text: the annotation summary
        var action = message.Action ?? MessageAction.Create;
        var version = message.Version?.Serial ?? serial;
        var headers = message.Extras is null ? null : message.GetHeaders();
        var status = headers?.GetValueOrDefault(Options.Names.StatusHeader);
        lock (_lock)
        {
            State? state = null;
            if (_serials.TryGetValue(serial, out var knownId)) _responses.TryGetValue(knownId, out state);
            if (state is null)
            {
                // Only a response message (by name) starts a response; a delete of one never seen tells nothing.
                if (message.Name != Options.Names.Response || action == MessageAction.Delete) return false;
                var responseId = headers?.GetValueOrDefault(Options.Names.ResponseIdHeader) ?? serial;
                if (_skipped.Contains(responseId) || _responses.ContainsKey(responseId)) return false;
                state = Create(responseId, message);
                state.MessageSerial = serial;
                state.HasStart = true; // every delivery holds the response from its beginning
                _serials[serial] = responseId;
            }
            else if (state.Version is { } applied && string.CompareOrdinal(version, applied) <= 0)
            {
                _duplicates++; // a version already applied (or the create of a message already seen)
                return false;
            }
            else if (state.IsDeleted || (state.IsComplete && action == MessageAction.Append))
            {
                return false; // nothing appends to an ended response; an update (an edit) still applies
            }

            state.Version = version;
            if (status is not null) state.Status = status;
            if (message.Annotations is { } summary) state.Annotations = summary; // history and first sights carry it
            var text = TextOf(message.Data);
            switch (action)
            {
                case MessageAction.Append:
                    AppendToken(state, text, message);
                    break;
                case MessageAction.Delete:
                    state.IsDeleted = true;
                    state.Text.Clear().Append(text);
                    Raise(new ResponseUpdate(ResponseUpdateKind.Deleted, state.ResponseId, null, text, state.TokenCount, message));
                    if (!state.IsComplete) Complete(state, message);
                    _applied++;
                    return true;
                case MessageAction.Create:
                    AppendToken(state, text, message); // a create may carry the first token
                    break;
                default:
                    ApplyWhole(state, text, message);
                    break;
            }

            if (ResponseStatus.IsFinal(status) && !state.IsComplete) Complete(state, message);
            _applied++;
            return true;
        }
    }

    /// <summary>A <c>message.summary</c> of a response's message: its annotations' summary, kept and reported.</summary>
    private bool ApplySummary(string serial, Message message)
    {
        lock (_lock)
        {
            if (!_serials.TryGetValue(serial, out var responseId) || !_responses.TryGetValue(responseId, out var state)) return false;
            state.Annotations = message.Annotations;
            Raise(new ResponseUpdate(ResponseUpdateKind.Annotated, state.ResponseId, null, null, state.TokenCount, message));
            _applied++;
            return true;
        }
    }

    private void AppendToken(State state, string token, Message message)
    {
        if (token.Length == 0) return;
        state.Text.Append(token);
        state.TokenCount++;
        Raise(new ResponseUpdate(ResponseUpdateKind.TokenAppended, state.ResponseId, token, null, state.TokenCount, message));
    }

    /// <summary>The whole text: the part beyond what was rebuilt is a token; a text that does not extend it replaces it.</summary>
    private void ApplyWhole(State state, string text, Message message)
    {
        var current = state.Text.ToString();
        if (text.StartsWith(current, StringComparison.Ordinal))
        {
            if (text.Length == current.Length) return;
            var delta = text[current.Length..];
            state.Text.Append(delta);
            Raise(new ResponseUpdate(ResponseUpdateKind.TokenAppended, state.ResponseId, delta, null, state.TokenCount, message));
            return;
        }

        state.Text.Clear().Append(text);
        state.IsReplaced = true;
        Raise(new ResponseUpdate(ResponseUpdateKind.Replaced, state.ResponseId, null, text, state.TokenCount, message));
    }
}
