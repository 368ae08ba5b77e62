using System.Buffers;
using System.Text;
using System.Text.Unicode;

namespace Tokenwire.Server.Channels;

/// <summary>
/// The text appended to a changed message (message-per-response: a token at a time), in UTF-8 while that is the smaller
/// form. A changed message's state stays in memory as long as the window refers to it (tens of seconds under load), so
/// its text was half of a message-per-response server's heap, and the garbage of every response it replaced died in
/// gen2. Held as UTF-16 (a <see cref="StringBuilder"/>) it took 2 bytes a character; LLM output is mostly ASCII, 1 byte
/// in UTF-8. Text where UTF-8 would be larger (mostly CJK, 3 bytes a character) and a lone surrogate (which UTF-8 cannot
/// hold; it is kept exactly) switch the message to UTF-16 for good. Hand-written: neither the BCL nor a library
/// here keeps appended text as UTF-8 and gives it back as a string.
/// Not thread-safe: its message's state is guarded by the channel lock.
/// </summary>
internal sealed class AppendedText
{
    private const int FirstChunk = 256;
    // Small enough that the last chunk's unused tail stays a fraction of a response's text (doubling up to 8 KB left
    // 6 KB unused at the end of a 10 KB response).
    private const int LargestChunk = 2 * 1024;

    // UTF-8 chunks that never move, each holding whole characters (a chunk's tail may be unused).
    private readonly List<(byte[] Bytes, int Used)> _chunks = [];
    private int _utf8Bytes;
    private int _chars;

    // Set once the text is held as UTF-16.
    private StringBuilder? _wide;

    /// <summary>True once the text is held as UTF-16 (UTF-8 would be larger, or it holds a lone surrogate).</summary>
    public bool IsWide => _wide is not null;

    /// <summary>Appends <paramref name="fragment"/>, whose UTF-8 length the caller has counted already (the message's size bound needs it).</summary>
    public void Append(string fragment, int utf8Length)
    {
        if (_wide is null && _utf8Bytes + (long)utf8Length <= 2L * (_chars + fragment.Length))
        {
            // What UTF-8 cannot hold (a lone surrogate, and what follows it) goes on as UTF-16.
            var rest = AppendUtf8(fragment);
            if (rest.IsEmpty) return;
            fragment = rest.ToString();
        }

        (_wide ??= Widen()).Append(fragment);
    }

    public override string ToString()
    {
        if (_wide is not null) return _wide.ToString();
        return string.Create(_chars, _chunks, static (chars, chunks) =>
        {
            foreach (var (bytes, used) in chunks)
            {
                // Each chunk holds whole characters, so each decodes on its own.
                chars = chars[Encoding.UTF8.GetChars(bytes.AsSpan(0, used), chars)..];
            }
        });
    }

    /// <summary>Appends as UTF-8 up to a lone surrogate; returns what is left from there (empty when all of it fit).</summary>
    private ReadOnlySpan<char> AppendUtf8(ReadOnlySpan<char> rest)
    {
        if (_chunks.Count == 0) _chunks.Add((new byte[FirstChunk], 0));
        while (true)
        {
            var last = _chunks.Count - 1;
            var (bytes, used) = _chunks[last];
            var status = Utf8.FromUtf16(rest, bytes.AsSpan(used), out var read, out var written, replaceInvalidSequences: false);
            _chunks[last] = (bytes, used + written);
            _utf8Bytes += written;
            _chars += read;
            rest = rest[read..];
            if (status != OperationStatus.DestinationTooSmall) return rest; // Done, or InvalidData at a lone surrogate

            // The chunk is full up to a character that does not fit: the rest goes to a new one, each twice the last.
            _chunks.Add((new byte[Math.Min(LargestChunk, bytes.Length * 2)], 0));
        }
    }

    private StringBuilder Widen()
    {
        var wide = new StringBuilder(ToString());
        _chunks.Clear();
        _utf8Bytes = 0;
        _chars = 0;
        return wide;
    }
}
