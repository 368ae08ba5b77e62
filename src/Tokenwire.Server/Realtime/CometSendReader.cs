using System.Buffers;
using System.IO.Pipelines;
using System.Text.Json;
using Tokenwire.Protocol;

namespace Tokenwire.Server.Realtime;

/// <summary>
/// Reads a comet <c>send</c> body, a JSON array of protocol messages, one element at a time as its bytes arrive: memory
/// is bounded by one frame (<c>MaxFrameSize</c>), not by the body, and however many frames a client batched while its
/// previous send was in flight, none is refused for the company it keeps. Element boundaries come from
/// <see cref="Utf8JsonReader"/> (resumable across reads); each element is then decoded by the protocol codec.
/// </summary>
internal sealed class CometSendReader(PipeReader body, int maxFrameSize)
{
    // A frame's own depth limit is the codec's; the array adds one level around it.
    private static readonly JsonReaderOptions Options = new() { MaxDepth = 128 };

    // What may sit unread between frames (a comma, whitespace) besides a pending frame.
    private const int Slack = 64;

    private JsonReaderState _state = new(Options);
    private bool _started;
    private bool _finished;

    /// <summary>
    /// The next frames that have arrived in full, each decoded by <paramref name="decode"/>; null at the end of the array.
    /// <paramref name="beforeBlocking"/> runs before waiting for more of the body (the connection flushes its ACKs then).
    /// </summary>
    /// <exception cref="AblyException">40000 for a body that is not a JSON array of objects, 40009 for a frame larger than
    /// the maximum; whatever <paramref name="decode"/> throws.</exception>
    public async ValueTask<List<ProtocolMessage>?> ReadAsync(Func<ReadOnlySpan<byte>, ProtocolMessage> decode, Action beforeBlocking, CancellationToken cancel)
    {
        var frames = new List<ProtocolMessage>();
        while (true)
        {
            // Not TryRead: it returns data already examined, and a partial frame would spin. ReadAsync waits for more.
            var reading = body.ReadAsync(cancel);
            if (!reading.IsCompleted) beforeBlocking();
            var result = await reading.ConfigureAwait(false);

            var buffer = result.Buffer;
            SequencePosition consumed;
            try
            {
                consumed = Parse(buffer, result.IsCompleted, decode, frames);
            }
            catch
            {
                body.AdvanceTo(buffer.Start, buffer.End);
                throw;
            }

            var pending = buffer.Slice(consumed).Length;
            body.AdvanceTo(consumed, buffer.End);
            if (frames.Count > 0) return frames;
            if (_finished && pending == 0 && result.IsCompleted) return null;
            if (pending > maxFrameSize + Slack) throw TooLarge();
            if (result.IsCompleted) throw new ProtocolException("comet: the send body ends inside its array");
        }
    }

    /// <summary>Decodes every complete element of <paramref name="buffer"/>; returns how far it got.</summary>
    private SequencePosition Parse(ReadOnlySequence<byte> buffer, bool isFinalBlock, Func<ReadOnlySpan<byte>, ProtocolMessage> decode, List<ProtocolMessage> frames)
    {
        var reader = new Utf8JsonReader(buffer, isFinalBlock, _state);
        var consumed = buffer.Start;
        try
        {
            if (!_started)
            {
                if (!reader.Read()) return consumed;
                if (reader.TokenType != JsonTokenType.StartArray) throw NotAnArray();
                (_started, consumed, _state) = (true, reader.Position, reader.CurrentState);
            }

            while (!_finished)
            {
                if (!reader.Read()) break;
                if (reader.TokenType == JsonTokenType.EndArray)
                {
                    (_finished, consumed, _state) = (true, reader.Position, reader.CurrentState);
                    break;
                }

                if (reader.TokenType != JsonTokenType.StartObject) throw NotAnArray();
                var start = reader.TokenStartIndex;
                if (!reader.TrySkip()) break; // the rest of this frame has not arrived yet
                var length = reader.BytesConsumed - start;
                if (length > maxFrameSize) throw TooLarge();
                frames.Add(Decode(buffer.Slice(start, length), decode));
                (consumed, _state) = (reader.Position, reader.CurrentState);
            }

            if (_finished && isFinalBlock && reader.Read()) throw new ProtocolException("comet: data after the send body's array");
            if (_finished) consumed = reader.Position;
        }
        catch (JsonException e)
        {
            throw new ProtocolException("comet: the send body is not valid JSON: " + e.Message, e);
        }

        return consumed;
    }

    private static ProtocolMessage Decode(ReadOnlySequence<byte> element, Func<ReadOnlySpan<byte>, ProtocolMessage> decode)
    {
        if (element.IsSingleSegment) return decode(element.FirstSpan);
        var length = (int)element.Length;
        var copy = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            element.CopyTo(copy);
            return decode(copy.AsSpan(0, length));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(copy);
        }
    }

    private static ProtocolException NotAnArray() => new("comet: a send body is a JSON array of protocol message objects");

    private AblyException TooLarge() =>
        new(ErrorCodes.MessageTooLarge, 400, $"Frame larger than the maximum of {maxFrameSize} bytes");
}
