using System.Collections.Concurrent;

namespace Tokenwire.Server.Observability;

/// <summary>
/// The <c>namespace</c> label of a channel's series (the part of its name before the first <c>:</c>), bounded: the first
/// <see cref="ObservabilityOptions.MaxNamespaceLabels"/> namespaces seen get a label of their own, later ones share
/// <c>_other</c>, and channels without a namespace are <c>_none</c>. Channel names and response ids are never labels.
/// Lookups by span: finding the label of a channel allocates nothing once its namespace is known.
/// </summary>
internal sealed class NamespaceLabels(int max)
{
    public const string None = "_none";
    public const string Other = "_other";

    private readonly ConcurrentDictionary<string, string> _labels = new(StringComparer.Ordinal);

    /// <summary>The label for <paramref name="channel"/>.</summary>
    public string For(ReadOnlySpan<char> channel)
    {
        var colon = channel.IndexOf(':');
        if (colon <= 0) return None;
        var ns = channel[..colon];
        if (_labels.GetAlternateLookup<ReadOnlySpan<char>>().TryGetValue(ns, out var label)) return label;
        if (_labels.Count >= max) return Other;
        var name = ns.ToString();
        return _labels.GetOrAdd(name, name);
    }
}
