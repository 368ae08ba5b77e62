using System.Text;
using Tokenwire.Server.Channels;

namespace Tokenwire.Server.Tests.Channels;

/// <summary>
/// A changed message's appended text: whatever is appended comes back exactly (across chunk boundaries, in any script,
/// lone surrogates included), and mostly-ASCII text is held in half the memory UTF-16 takes.
/// </summary>
public sealed class AppendedTextTests
{
    // Fragments, and whether the text ends up held as UTF-16. By index: xUnit's serialization would mangle lone surrogates.
    private static readonly (string Fragment, bool Wide)[] Cases =
    [
        ("token ", false),
        ("café é ", false), // 2-byte characters, one falling across each chunk boundary in turn
        ("a€b ", false), // a 3-byte character, ASCII around it keeps UTF-8 the smaller form
        ("日本語のテキスト", true), // 3 bytes a character in UTF-8, 2 in UTF-16
        ("hi 👋 ", true), // a surrogate pair, which the pieces below slice through: a lone surrogate
        ("x\uD83D", true), // a lone high surrogate, its low one at the start of the next fragment
        ("\uDC4Bz", true), // a lone low surrogate
    ];

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    [InlineData(6)]
    public void Text_appended_in_many_fragments_comes_back_exactly(int index)
    {
        var (fragment, wide) = Cases[index];
        var text = new AppendedText();
        var expected = new StringBuilder();
        for (var i = 0; i < 3_000; i++)
        {
            // Fragments of varying length, so chunk boundaries fall at every offset within a character.
            var piece = fragment[..(1 + (i % fragment.Length))] + (i % 7 == 0 ? fragment : "");
            text.Append(piece, Encoding.UTF8.GetByteCount(piece));
            expected.Append(piece);
            if (i % 500 == 0) Assert.Equal(expected.ToString(), text.ToString());
        }

        Assert.Equal(expected.ToString(), text.ToString(), StringComparer.Ordinal);
        Assert.Equal(wide, text.IsWide);
    }

    [Fact]
    public void Text_that_turns_wide_midway_keeps_what_came_before()
    {
        var text = new AppendedText();
        text.Append("The answer is ", Encoding.UTF8.GetByteCount("The answer is "));
        text.Append("naïve — ", Encoding.UTF8.GetByteCount("naïve — "));
        Assert.False(text.IsWide);
        text.Append("😀 ", Encoding.UTF8.GetByteCount("😀 "));
        Assert.False(text.IsWide);
        text.Append("日本語のテキストです。日本語のテキストです。", Encoding.UTF8.GetByteCount("日本語のテキストです。日本語のテキストです。"));
        Assert.True(text.IsWide); // UTF-8 passed twice the characters: UTF-16 is the smaller form from here
        text.Append("more.", Encoding.UTF8.GetByteCount("more."));
        Assert.Equal("The answer is naïve — 😀 日本語のテキストです。日本語のテキストです。more.", text.ToString());
    }

    [Fact]
    public void Mostly_ascii_text_takes_about_a_byte_a_character()
    {
        // 200 tokens of ~48 characters, as the benchmark's seed-shaped response: UTF-16 would hold 2 bytes a character.
        var tokens = Enumerable.Range(0, 200).Select(i => $"token {i:D4} of a streamed answer, with – a dash ").ToArray();
        var chars = tokens.Sum(t => t.Length);
        var text = new AppendedText();
        var before = GC.GetAllocatedBytesForCurrentThread();
        foreach (var t in tokens) text.Append(t, Encoding.UTF8.GetByteCount(t));
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.False(text.IsWide);
        Assert.InRange(allocated, chars, chars * 1.4); // UTF-16 is 2 bytes a character before any overhead
        Assert.Equal(string.Concat(tokens), text.ToString());
    }
}
