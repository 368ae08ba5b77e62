using System.Text.Json.Nodes;
using Tokenwire.Protocol;

namespace Tokenwire.Server.Channels;

/// <summary>
/// The annotations of one message and their summary (Ably's <c>message.summary</c>: <c>annotations.summary</c> keyed by
/// annotation type). The part of the type after the last <c>:</c> names how annotations of that type are summarised:
/// <list type="bullet">
/// <item><c>total.v1</c>: <c>{total}</c>, creates minus deletes.</item>
/// <item><c>flag.v1</c>: <c>{total, clientIds, clipped}</c>, each client once.</item>
/// <item><c>distinct.v1</c>: per name <c>{total, clientIds, clipped}</c>, each client once per name (a thumbs up and a thumbs
/// down from one client both count).</item>
/// <item><c>unique.v1</c>: per name, as distinct, but a client counts under one name only (its newest).</item>
/// <item><c>multiple.v1</c>: per name <c>{total, clientIds: {clientId: count}, totalUnidentified, totalClientIds, clipped}</c>.</item>
/// </list>
/// A delete (annotation action 1) withdraws the client's annotation of that type (and name). Nothing is clipped.
/// Not thread-safe: the channel lock guards it.
/// </summary>
internal sealed class AnnotationSummary
{
    private readonly List<Message> _annotations = [];
    private OpaqueValue? _summary;

    /// <summary>Every annotation of the message (creates and deletes), in serial order.</summary>
    public IReadOnlyList<Message> All => _annotations;

    public int Count => _annotations.Count;

    /// <summary>The summarisation an annotation type names, or null for one this server does not summarise.</summary>
    public static string? Summarisation(string? type)
    {
        if (type is null) return null;
        var s = type[(type.LastIndexOf(':') + 1)..];
        return s is "total.v1" or "flag.v1" or "distinct.v1" or "unique.v1" or "multiple.v1" ? s : null;
    }

    /// <summary>True when the summarisation counts clients, so an annotation of it needs a clientId.</summary>
    public static bool NeedsClientId(string summarisation) => summarisation is "flag.v1" or "distinct.v1" or "unique.v1";

    public void Add(Message annotation)
    {
        _annotations.Add(annotation);
        _summary = null;
    }

    /// <summary>The summary of every type (<c>{type: summary}</c>), or null when the message has no annotation.</summary>
    public OpaqueValue? Summary()
    {
        if (_annotations.Count == 0) return null;
        if (_summary is { } cached) return cached;
        var summary = new JsonObject();
        foreach (var group in _annotations.GroupBy(a => a.AnnotationType!, StringComparer.Ordinal))
        {
            summary[group.Key] = Summarise(Summarisation(group.Key), group);
        }

        return _summary = OpaqueValue.FromJson(System.Text.Encoding.UTF8.GetBytes(new JsonObject { ["summary"] = summary }.ToJsonString()));
    }

    private static JsonObject Summarise(string? summarisation, IEnumerable<Message> annotations) => summarisation switch
    {
        "flag.v1" => ClientList(Clients(annotations, byName: false).GetValueOrDefault(string.Empty) ?? []),
        "distinct.v1" => PerName(Clients(annotations, byName: true)),
        "unique.v1" => PerName(Unique(annotations)),
        "multiple.v1" => Multiple(annotations),
        _ => new JsonObject { ["total"] = annotations.Sum(a => IsDelete(a) ? -1 : 1) },
    };

    private static bool IsDelete(Message a) => a.Action == MessageAction.Update; // annotation action 1 = annotation.delete

    /// <summary>Clients per name (or under one key when not by name), in order of first annotation.</summary>
    private static Dictionary<string, List<string>> Clients(IEnumerable<Message> annotations, bool byName)
    {
        var result = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var a in annotations)
        {
            if (a.ClientId is not { } client) continue;
            var key = byName ? a.Name ?? string.Empty : string.Empty;
            var list = result.TryGetValue(key, out var l) ? l : result[key] = [];
            if (IsDelete(a)) list.Remove(client);
            else if (!list.Contains(client)) list.Add(client);
        }

        return result;
    }

    /// <summary>Clients per name, each client under its newest name only.</summary>
    private static Dictionary<string, List<string>> Unique(IEnumerable<Message> annotations)
    {
        var result = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var a in annotations)
        {
            if (a.ClientId is not { } client) continue;
            var name = a.Name ?? string.Empty;
            if (IsDelete(a))
            {
                if (result.TryGetValue(name, out var l)) l.Remove(client);
                continue;
            }

            foreach (var list in result.Values) list.Remove(client);
            (result.TryGetValue(name, out var names) ? names : result[name] = []).Add(client);
        }

        return result;
    }

    private static JsonObject PerName(Dictionary<string, List<string>> clients)
    {
        var byName = new JsonObject();
        foreach (var (name, list) in clients)
        {
            if (list.Count > 0) byName[name] = ClientList(list);
        }

        return byName;
    }

    private static JsonObject ClientList(List<string> clients) => new()
    {
        ["total"] = clients.Count,
        ["clientIds"] = new JsonArray([.. clients.Select(c => (JsonNode)c)]),
        ["clipped"] = false,
    };

    private static JsonObject Multiple(IEnumerable<Message> annotations)
    {
        var counts = new Dictionary<string, (Dictionary<string, int> Clients, int Unidentified)>(StringComparer.Ordinal);
        foreach (var a in annotations)
        {
            var name = a.Name ?? string.Empty;
            var entry = counts.TryGetValue(name, out var e) ? e : (Clients: new Dictionary<string, int>(StringComparer.Ordinal), Unidentified: 0);
            if (a.ClientId is not { } client) entry.Unidentified = Math.Max(0, entry.Unidentified + (IsDelete(a) ? -(a.Count ?? 1) : a.Count ?? 1));
            else if (IsDelete(a)) entry.Clients.Remove(client);
            else entry.Clients[client] = entry.Clients.GetValueOrDefault(client) + (a.Count ?? 1);
            counts[name] = entry;
        }

        var byName = new JsonObject();
        foreach (var (name, (clients, unidentified)) in counts)
        {
            var identified = clients.Values.Sum();
            if (identified + unidentified == 0) continue;
            byName[name] = new JsonObject
            {
                ["total"] = identified + unidentified,
                ["clientIds"] = new JsonObject([.. clients.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))]),
                ["totalUnidentified"] = unidentified,
                ["totalClientIds"] = clients.Count,
                ["clipped"] = false,
            };
        }

        return byName;
    }
}
