// RepeatedStrings — one shared string for the short values that repeat from frame to frame (channel names, message
// names such as "token", the message serial each append of a response names), instead of a new string each time a
// frame is decoded.

using System.Text;
using CommunityToolkit.HighPerformance.Buffers;

namespace Tokenwire.Protocol.Codecs;

/// <summary>
/// Short ASCII strings through CommunityToolkit's <see cref="StringPool"/> (a fixed-size, thread-safe pool: its memory
/// is bounded whatever names clients send, unlike <c>string.Intern</c>). Only ASCII is pooled, so a pooled string is
/// exactly what the strict decoders would have made; anything else is left to them (false).
/// </summary>
internal static class RepeatedStrings
{
    private const int MaxLength = 128;

    /// <summary>The pooled string of <paramref name="utf8"/> when it is short ASCII; false (nothing decoded) otherwise.</summary>
    public static bool TryGet(ReadOnlySpan<byte> utf8, out string value)
    {
        if (utf8.Length > MaxLength || !Ascii.IsValid(utf8))
        {
            value = null!;
            return false;
        }

        value = StringPool.Shared.GetOrAdd(utf8, Encoding.ASCII);
        return true;
    }
}
