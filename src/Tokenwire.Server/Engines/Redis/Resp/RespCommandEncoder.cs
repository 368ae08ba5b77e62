// RESP client — stands in for StackExchange.Redis, which cannot be restored from this project's package mirror
// (its dependency Pipelines.Sockets.Unofficial is missing).
//
// RespCommandEncoder: a command is a RESP array of bulk strings. Arguments are binary safe: text is sent as UTF-8,
// bytes as they are, numbers as invariant decimal text. Encoding happens on the caller's thread, into one exact-size
// array, so a bad argument throws at the call and the writer loop only copies bytes.

using System.Buffers.Text;
using System.Globalization;
using System.Text;

namespace Tokenwire.Server.Engines.Redis.Resp;

/// <summary>Encodes commands as RESP arrays of bulk strings.</summary>
internal static class RespCommandEncoder
{
    /// <summary>
    /// Encodes a command. Supported argument types: <see cref="string"/> (UTF-8), <see cref="byte"/>[],
    /// <see cref="ReadOnlyMemory{T}"/> and <see cref="Memory{T}"/> of bytes (raw), <see cref="ArraySegment{T}"/> of bytes,
    /// <see cref="int"/>, <see cref="long"/>, <see cref="uint"/>, <see cref="ulong"/> (decimal), and
    /// <see cref="double"/> (round-trip invariant text, <c>+inf</c>/<c>-inf</c>).
    /// </summary>
    /// <param name="args">The command name followed by its arguments.</param>
    /// <returns>The encoded command.</returns>
    /// <exception cref="ArgumentException">No arguments, a null argument, or an unsupported type.</exception>
    public static byte[] Encode(IReadOnlyList<object> args)
    {
        ArgumentNullException.ThrowIfNull(args);
        if (args.Count == 0) throw new ArgumentException("A command needs at least its name.", nameof(args));
        var parts = new ReadOnlyMemory<byte>[args.Count];
        for (var i = 0; i < args.Count; i++) parts[i] = ToBytes(args[i], i);
        return Encode(parts);
    }

    /// <summary>Encodes a command whose arguments are already bytes.</summary>
    /// <param name="args">The command name followed by its arguments, each sent as is.</param>
    /// <returns>The encoded command.</returns>
    public static byte[] Encode(IReadOnlyList<ReadOnlyMemory<byte>> args)
    {
        ArgumentNullException.ThrowIfNull(args);
        if (args.Count == 0) throw new ArgumentException("A command needs at least its name.", nameof(args));
        long size = HeaderLength(args.Count);
        for (var i = 0; i < args.Count; i++) size += HeaderLength(args[i].Length) + args[i].Length + 2;
        if (size > Array.MaxLength) throw new ArgumentException("The command is too large to encode.", nameof(args));

        var buffer = new byte[size];
        var span = buffer.AsSpan();
        var at = WriteHeader(span, '*', args.Count);
        for (var i = 0; i < args.Count; i++)
        {
            at += WriteHeader(span[at..], '$', args[i].Length);
            args[i].Span.CopyTo(span[at..]);
            at += args[i].Length;
            span[at++] = (byte)'\r';
            span[at++] = (byte)'\n';
        }
        return buffer;
    }

    /// <summary>The command's name (its first argument) for error messages; never its other arguments, which may be secrets.</summary>
    /// <param name="first">The first argument.</param>
    public static string CommandName(object? first) => first switch
    {
        string s => s.Length <= 32 ? s.ToUpperInvariant() : s[..32].ToUpperInvariant(),
        byte[] b => Encoding.UTF8.GetString(b, 0, Math.Min(b.Length, 32)).ToUpperInvariant(),
        ReadOnlyMemory<byte> m => Encoding.UTF8.GetString(m.Span[..Math.Min(m.Length, 32)]).ToUpperInvariant(),
        _ => "?",
    };

    private static ReadOnlyMemory<byte> ToBytes(object? arg, int index) => arg switch
    {
        string s => Encoding.UTF8.GetBytes(s),
        byte[] b => b,
        ReadOnlyMemory<byte> m => m,
        Memory<byte> m => m,
        ArraySegment<byte> a => a,
        int n => Encoding.ASCII.GetBytes(n.ToString(CultureInfo.InvariantCulture)),
        long n => Encoding.ASCII.GetBytes(n.ToString(CultureInfo.InvariantCulture)),
        uint n => Encoding.ASCII.GetBytes(n.ToString(CultureInfo.InvariantCulture)),
        ulong n => Encoding.ASCII.GetBytes(n.ToString(CultureInfo.InvariantCulture)),
        double d when double.IsPositiveInfinity(d) => "+inf"u8.ToArray(),
        double d when double.IsNegativeInfinity(d) => "-inf"u8.ToArray(),
        double d when double.IsNaN(d) => throw new ArgumentException($"Argument {index} is NaN, which Redis does not accept.", nameof(arg)),
        double d => Encoding.ASCII.GetBytes(d.ToString("R", CultureInfo.InvariantCulture)),
        null => throw new ArgumentException($"Argument {index} is null; Redis arguments are strings, bytes or numbers.", nameof(arg)),
        _ => throw new ArgumentException($"Argument {index} has unsupported type {arg.GetType().Name}; pass a string, bytes or a number.", nameof(arg)),
    };

    private static int HeaderLength(int n) => 1 + DigitCount(n) + 2;

    private static int DigitCount(int n)
    {
        var digits = 1;
        while (n >= 10)
        {
            n /= 10;
            digits++;
        }
        return digits;
    }

    private static int WriteHeader(Span<byte> span, char kind, int n)
    {
        span[0] = (byte)kind;
        Utf8Formatter.TryFormat(n, span[1..], out var written);
        span[1 + written] = (byte)'\r';
        span[2 + written] = (byte)'\n';
        return written + 3;
    }
}
