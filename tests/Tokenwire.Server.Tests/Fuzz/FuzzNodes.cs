using System.Globalization;
using System.Text;

namespace Tokenwire.Server.Tests.Fuzz;

/// <summary>
/// A value tree the fuzz generators build and then serialise to JSON or MessagePack. It can express what a real
/// encoder never writes: non-string map keys, duplicate keys, invalid UTF-8, exotic number tokens, ext values and
/// headers that declare far more bytes than follow.
/// </summary>
internal abstract record FNode;

internal sealed record FMap(List<(FNode Key, FNode Value)> Entries) : FNode;

internal sealed record FArr(List<FNode> Items) : FNode;

/// <summary>A string as UTF-8 bytes; may be invalid UTF-8.</summary>
internal sealed record FStr(byte[] Utf8) : FNode
{
    public static FStr Of(string s) => new(Encoding.UTF8.GetBytes(s));
}

internal sealed record FInt(long Value) : FNode;

internal sealed record FUInt(ulong Value) : FNode;

internal sealed record FFloat(double Value) : FNode;

/// <summary>A number token written verbatim in JSON (<c>1e400</c>, <c>NaN</c>, <c>01</c>); a float64 in MessagePack.</summary>
internal sealed record FNumText(string Text) : FNode;

internal sealed record FBool(bool Value) : FNode;

internal sealed record FNull : FNode
{
    public static readonly FNull Instance = new();
}

internal sealed record FBin(byte[] Bytes) : FNode;

internal sealed record FExt(sbyte Type, byte[] Data) : FNode;

/// <summary>Bytes written verbatim in MessagePack (hand-built hostile structures); the JSON text <c>Json</c> otherwise.</summary>
internal sealed record FRaw(byte[] MsgPack, string Json) : FNode;

/// <summary>
/// MessagePack: a str/bin/array/map/ext header declaring <see cref="Length"/> (e.g. 0xFFFFFFFF) followed by only a
/// few bytes. JSON: an unterminated string, array or a number with thousands of digits.
/// </summary>
internal sealed record FHuge(byte Header, uint Length, byte[] Tail) : FNode;

/// <summary>Serialises <see cref="FNode"/> trees. Formatting choices (widths, whitespace, escapes) come from the random source.</summary>
internal static class FNodeWriter
{
    public static byte[] ToJson(FNode node, Random r, bool hostile)
    {
        var o = new List<byte>(128);
        if (hostile && r.Next(20) == 0) o.AddRange([0xEF, 0xBB, 0xBF]); // UTF-8 BOM
        Json(node, o, r, hostile);
        if (hostile && r.Next(30) == 0)
        {
            // Trailing garbage or a second value.
            o.AddRange(r.Next(2) == 0 ? "}"u8.ToArray() : " {}"u8.ToArray());
        }

        return [.. o];
    }

    public static byte[] ToMsgPack(FNode node, Random r, bool hostile)
    {
        var o = new List<byte>(128);
        MsgPack(node, o, r, hostile);
        if (hostile && r.Next(40) == 0) o.Add((byte)r.Next(256));
        return [.. o];
    }

    private static void Ws(List<byte> o, Random r, bool hostile)
    {
        if (!hostile || r.Next(12) != 0) return;
        var ws = " \t\r\n"u8;
        for (var n = r.Next(1, 4); n > 0; n--) o.Add(ws[r.Next(ws.Length)]);
    }

    private static void Json(FNode node, List<byte> o, Random r, bool hostile)
    {
        Ws(o, r, hostile);
        switch (node)
        {
            case FMap map:
                o.Add((byte)'{');
                for (var i = 0; i < map.Entries.Count; i++)
                {
                    if (i > 0) o.Add((byte)',');
                    var (key, value) = map.Entries[i];
                    Ws(o, r, hostile);
                    // A non-string key is invalid JSON: write it raw sometimes, otherwise as its text.
                    if (key is FStr ks) JsonString(ks.Utf8, o, r, hostile);
                    else if (hostile && r.Next(3) == 0) Json(key, o, r, hostile);
                    else JsonString(Encoding.UTF8.GetBytes(KeyText(key)), o, r, hostile);
                    Ws(o, r, hostile);
                    o.Add((byte)':');
                    Json(value, o, r, hostile);
                }

                if (hostile && map.Entries.Count > 0 && r.Next(60) == 0) o.Add((byte)','); // trailing comma
                o.Add((byte)'}');
                break;
            case FArr arr:
                o.Add((byte)'[');
                for (var i = 0; i < arr.Items.Count; i++)
                {
                    if (i > 0) o.Add((byte)',');
                    Json(arr.Items[i], o, r, hostile);
                }

                o.Add((byte)']');
                break;
            case FStr s:
                JsonString(s.Utf8, o, r, hostile);
                break;
            case FInt i:
                Ascii(o, i.Value.ToString(CultureInfo.InvariantCulture));
                break;
            case FUInt u:
                Ascii(o, u.Value.ToString(CultureInfo.InvariantCulture));
                break;
            case FFloat f:
                Ascii(o, double.IsNaN(f.Value) ? "NaN" : double.IsPositiveInfinity(f.Value) ? "Infinity" : double.IsNegativeInfinity(f.Value) ? "-Infinity"
                    : f.Value.ToString("R", CultureInfo.InvariantCulture));
                break;
            case FNumText t:
                Ascii(o, t.Text);
                break;
            case FBool b:
                Ascii(o, b.Value ? "true" : "false");
                break;
            case FNull:
                Ascii(o, hostile && r.Next(50) == 0 ? "nul" : "null");
                break;
            case FBin bin:
                JsonString(Encoding.ASCII.GetBytes(Convert.ToBase64String(bin.Bytes)), o, r, hostile);
                break;
            case FExt ext:
                Ascii(o, hostile ? "undefined" : "null");
                _ = ext;
                break;
            case FRaw raw:
                Ascii(o, raw.Json);
                break;
            case FHuge huge:
                switch (huge.Header % 4)
                {
                    case 0:
                        o.Add((byte)'"');
                        o.AddRange(huge.Tail); // unterminated string
                        break;
                    case 1:
                        for (var n = 0; n < 70; n++) o.Add((byte)'[');
                        break;
                    case 2:
                        o.Add((byte)'1');
                        for (var n = 0; n < 2000; n++) o.Add((byte)('0' + (n % 10)));
                        break;
                    default:
                        Ascii(o, "\"\\u");
                        o.AddRange(huge.Tail);
                        break;
                }

                break;
        }

        Ws(o, r, hostile);
    }

    private static string KeyText(FNode key) => key switch
    {
        FInt i => i.Value.ToString(CultureInfo.InvariantCulture),
        FBool b => b.Value ? "true" : "false",
        _ => "k",
    };

    private static void Ascii(List<byte> o, string s)
    {
        foreach (var c in s) o.Add((byte)c);
    }

    private static void JsonString(byte[] utf8, List<byte> o, Random r, bool hostile)
    {
        o.Add((byte)'"');
        foreach (var b in utf8)
        {
            switch (b)
            {
                case (byte)'"':
                    o.Add((byte)'\\');
                    o.Add(b);
                    break;
                case (byte)'\\':
                    o.Add((byte)'\\');
                    o.Add(b);
                    break;
                case < 0x20:
                    if (hostile && r.Next(8) == 0) o.Add(b); // raw control character: invalid JSON
                    else Ascii(o, "\\u" + b.ToString("x4", CultureInfo.InvariantCulture));
                    break;
                default:
                    o.Add(b);
                    break;
            }
        }

        if (hostile && r.Next(25) == 0)
        {
            Ascii(o, r.Next(6) switch
            {
                0 => "\\ud800",          // lone high surrogate
                1 => "\\udc00x",         // lone low surrogate
                2 => "\\ud83d\\ude00",   // a valid pair
                3 => "\\x41",            // invalid escape
                4 => "\\u00",            // short escape
                _ => "\\u0000",
            });
        }

        o.Add((byte)'"');
    }

    private static void MsgPack(FNode node, List<byte> o, Random r, bool hostile)
    {
        switch (node)
        {
            case FMap map:
                Header(o, r, map.Entries.Count, 0x80, 15, 0xde, 0xdf);
                foreach (var (key, value) in map.Entries)
                {
                    MsgPack(key, o, r, hostile);
                    MsgPack(value, o, r, hostile);
                }

                break;
            case FArr arr:
                Header(o, r, arr.Items.Count, 0x90, 15, 0xdc, 0xdd);
                foreach (var item in arr.Items) MsgPack(item, o, r, hostile);
                break;
            case FStr s:
                StrHeader(o, r, s.Utf8.Length);
                o.AddRange(s.Utf8);
                break;
            case FInt i:
                Int(o, r, i.Value);
                break;
            case FUInt u:
                o.Add(0xcf);
                Be64(o, u.Value);
                break;
            case FFloat f:
                Float(o, r, f.Value);
                break;
            case FNumText t:
                Float(o, r, ParseLoose(t.Text));
                break;
            case FBool b:
                o.Add(b.Value ? (byte)0xc3 : (byte)0xc2);
                break;
            case FNull:
                o.Add(0xc0);
                break;
            case FBin bin:
                BinHeader(o, r, bin.Bytes.Length);
                o.AddRange(bin.Bytes);
                break;
            case FExt ext:
                var fix = ext.Data.Length switch { 1 => 0xd4, 2 => 0xd5, 4 => 0xd6, 8 => 0xd7, 16 => 0xd8, _ => 0 };
                if (fix != 0 && r.Next(2) == 0)
                {
                    o.Add((byte)fix);
                }
                else if (ext.Data.Length <= 255 && r.Next(3) != 0)
                {
                    o.Add(0xc7);
                    o.Add((byte)ext.Data.Length);
                }
                else if (r.Next(2) == 0)
                {
                    o.Add(0xc8);
                    Be16(o, (ushort)ext.Data.Length);
                }
                else
                {
                    o.Add(0xc9);
                    Be32(o, (uint)ext.Data.Length);
                }

                o.Add((byte)ext.Type);
                o.AddRange(ext.Data);
                break;
            case FRaw raw:
                o.AddRange(raw.MsgPack);
                break;
            case FHuge huge:
                o.Add(huge.Header);
                switch (huge.Header)
                {
                    case 0xd9 or 0xc4 or 0xc7:
                        o.Add((byte)Math.Min(huge.Length, 255));
                        break;
                    case 0xda or 0xc5 or 0xc8 or 0xdc or 0xde:
                        Be16(o, (ushort)Math.Min(huge.Length, ushort.MaxValue));
                        break;
                    default:
                        Be32(o, huge.Length);
                        break;
                }

                if (huge.Header is 0xc7 or 0xc8 or 0xc9) o.Add(1); // ext type byte
                o.AddRange(huge.Tail);
                break;
        }
    }

    private static double ParseLoose(string text) => text switch
    {
        "NaN" or "-NaN" => double.NaN,
        "Infinity" => double.PositiveInfinity,
        "-Infinity" => double.NegativeInfinity,
        _ => double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) ? d : 0.5,
    };

    private static void Header(List<byte> o, Random r, int count, byte fixBase, int fixMax, byte b16, byte b32)
    {
        // Any width that fits: real encoders pick the smallest, but every width is valid MessagePack.
        var choice = r.Next(10);
        if (count <= fixMax && choice < 8) o.Add((byte)(fixBase | count));
        else if (count <= ushort.MaxValue && choice < 9)
        {
            o.Add(b16);
            Be16(o, (ushort)count);
        }
        else
        {
            o.Add(b32);
            Be32(o, (uint)count);
        }
    }

    private static void StrHeader(List<byte> o, Random r, int length)
    {
        var choice = r.Next(10);
        if (length <= 31 && choice < 7) o.Add((byte)(0xa0 | length));
        else if (length <= 255 && choice < 8)
        {
            o.Add(0xd9);
            o.Add((byte)length);
        }
        else if (length <= ushort.MaxValue && choice < 9)
        {
            o.Add(0xda);
            Be16(o, (ushort)length);
        }
        else
        {
            o.Add(0xdb);
            Be32(o, (uint)length);
        }
    }

    private static void BinHeader(List<byte> o, Random r, int length)
    {
        var choice = r.Next(10);
        if (length <= 255 && choice < 7)
        {
            o.Add(0xc4);
            o.Add((byte)length);
        }
        else if (length <= ushort.MaxValue && choice < 9)
        {
            o.Add(0xc5);
            Be16(o, (ushort)length);
        }
        else
        {
            o.Add(0xc6);
            Be32(o, (uint)length);
        }
    }

    private static void Int(List<byte> o, Random r, long v)
    {
        // Pick a random encoding that can hold the value, including oversized ones.
        Span<int> options = stackalloc int[10];
        var count = 0;
        if (v is >= 0 and <= 0x7f) options[count++] = 0;
        if (v is >= -32 and < 0) options[count++] = 1;
        if (v is >= 0 and <= byte.MaxValue) options[count++] = 0xcc;
        if (v is >= 0 and <= ushort.MaxValue) options[count++] = 0xcd;
        if (v is >= 0 and <= uint.MaxValue) options[count++] = 0xce;
        if (v >= 0) options[count++] = 0xcf;
        if (v is >= sbyte.MinValue and <= sbyte.MaxValue) options[count++] = 0xd0;
        if (v is >= short.MinValue and <= short.MaxValue) options[count++] = 0xd1;
        if (v is >= int.MinValue and <= int.MaxValue) options[count++] = 0xd2;
        options[count++] = 0xd3;
        var pick = r.Next(4) == 0 ? options[r.Next(count)] : options[0];
        switch (pick)
        {
            case 0:
            case 1:
                o.Add(unchecked((byte)(sbyte)v));
                break;
            case 0xcc:
                o.Add(0xcc);
                o.Add((byte)v);
                break;
            case 0xcd:
                o.Add(0xcd);
                Be16(o, (ushort)v);
                break;
            case 0xce:
                o.Add(0xce);
                Be32(o, (uint)v);
                break;
            case 0xcf:
                o.Add(0xcf);
                Be64(o, (ulong)v);
                break;
            case 0xd0:
                o.Add(0xd0);
                o.Add(unchecked((byte)(sbyte)v));
                break;
            case 0xd1:
                o.Add(0xd1);
                Be16(o, unchecked((ushort)(short)v));
                break;
            case 0xd2:
                o.Add(0xd2);
                Be32(o, unchecked((uint)(int)v));
                break;
            default:
                o.Add(0xd3);
                Be64(o, unchecked((ulong)v));
                break;
        }
    }

    private static void Float(List<byte> o, Random r, double d)
    {
        if ((float)d == d || double.IsNaN(d))
        {
            if (r.Next(2) == 0)
            {
                o.Add(0xca);
                Be32(o, BitConverter.SingleToUInt32Bits((float)d));
                return;
            }
        }

        o.Add(0xcb);
        Be64(o, BitConverter.DoubleToUInt64Bits(d));
    }

    private static void Be16(List<byte> o, ushort v)
    {
        o.Add((byte)(v >> 8));
        o.Add((byte)v);
    }

    private static void Be32(List<byte> o, uint v)
    {
        Be16(o, (ushort)(v >> 16));
        Be16(o, (ushort)v);
    }

    private static void Be64(List<byte> o, ulong v)
    {
        Be32(o, (uint)(v >> 32));
        Be32(o, (uint)v);
    }
}
