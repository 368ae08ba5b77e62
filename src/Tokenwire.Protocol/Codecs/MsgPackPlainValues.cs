// MsgPackPlainValues — the REST side of the msgpack codec: a plain value graph (dictionaries, lists, strings, numbers,
// booleans, byte[], and the protocol types) to and from msgpack, for request and response bodies that are not frames.

using System.Collections;
using Tokenwire.Protocol.MsgPack;

namespace Tokenwire.Protocol.Codecs;

/// <summary>Converts plain value graphs to and from msgpack.</summary>
internal static class MsgPackPlainValues
{
    public static object? ReadPlain(ref MsgPackReader reader, int depth)
    {
        if (depth > MsgPackReader.MaxDepth) throw new ProtocolException("msgpack: nesting too deep");
        switch (reader.PeekType())
        {
            case MsgPackType.Nil: reader.TryReadNil(); return null;
            case MsgPackType.Boolean: return reader.ReadBoolean();
            case MsgPackType.Integer: return reader.ReadInt64();
            case MsgPackType.Float: return reader.ReadDouble();
            case MsgPackType.String: return reader.ReadString();
            case MsgPackType.Binary: return reader.ReadBinary().ToArray();
            // Declared counts only bound how much input remains; pre-sizing from them let nested containers each
            // allocate the whole input's worth (levels x input size), so capacity starts small and grows with content.
            case MsgPackType.Array:
                var n = reader.ReadArrayHeader();
                var list = new List<object?>(Math.Min(n, 16));
                for (; n > 0; n--) list.Add(ReadPlain(ref reader, depth + 1));
                return list;
            case MsgPackType.Map:
                var count = reader.ReadMapHeader();
                var map = new Dictionary<string, object?>(Math.Min(count, 16), StringComparer.Ordinal);
                for (; count > 0; count--)
                {
                    var key = MsgPackReaderPrimitives.ReadKey(ref reader);
                    map[key] = ReadPlain(ref reader, depth + 1);
                }

                return map;
            default:
                reader.Skip();
                return null;
        }
    }

    public static void WriteValue(MsgPackWriter w, object? value, int depth)
    {
        if (depth > 64) throw new InvalidOperationException("Value graph too deep");
        switch (value)
        {
            case null: w.WriteNil(); break;
            case string s: w.Write(s); break;
            case bool b: w.Write(b); break;
            case int i: w.Write(i); break;
            case long l: w.Write(l); break;
            case double d: w.Write(d); break;
            case byte[] bytes: w.WriteBinary(bytes); break;
            case ErrorInfo e: MsgPackMessageWriter.WriteError(w, e); break;
            case OpaqueValue o: w.WriteRaw(o.MsgPack); break;
            case Message m: MsgPackMessageWriter.WriteMessage(w, m); break;
            case IEnumerable<KeyValuePair<string, object?>> map:
                var entries = map.Where(kv => kv.Value is not null).ToList();
                w.WriteMapHeader(entries.Count);
                foreach (var (k, v) in entries)
                {
                    w.Write(k);
                    WriteValue(w, v, depth + 1);
                }

                break;
            case IEnumerable list:
                var items = list.Cast<object?>().ToList();
                w.WriteArrayHeader(items.Count);
                foreach (var item in items) WriteValue(w, item, depth + 1);
                break;
            default:
                throw new InvalidOperationException($"Cannot encode a {value.GetType().Name}");
        }
    }
}
