using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.RegularExpressions;

namespace Tokenwire.Testing;

/// <summary>
/// Scrapes a server's Prometheus endpoint as Prometheus does (HTTP Basic authentication with an API key: the key name as
/// user, the secret as password) and reads samples out of the text exposition format.
/// </summary>
public sealed partial class PrometheusScrape
{
    private readonly List<(string Name, Dictionary<string, string> Labels, double Value)> _samples = [];

    private PrometheusScrape(string text)
    {
        Text = text;
        foreach (var line in text.Split('\n'))
        {
            if (line.Length == 0 || line[0] == '#') continue;
            var m = SampleLine().Match(line);
            if (!m.Success) continue;
            var labels = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (Match l in Label().Matches(m.Groups["labels"].Value)) labels[l.Groups[1].Value] = l.Groups[2].Value;
            _samples.Add((m.Groups["name"].Value, labels, double.Parse(m.Groups["value"].Value, CultureInfo.InvariantCulture)));
        }
    }

    /// <summary>The whole response body.</summary>
    public string Text { get; }

    /// <summary>GETs <c>/metrics</c> with the server's root key (or <paramref name="key"/>) and parses it; throws on a non-200 answer.</summary>
    public static async Task<PrometheusScrape> FromAsync(TestServer server, string? key = null, string path = "/metrics")
    {
        using var response = await GetAsync(server, key ?? server.Key, path).ConfigureAwait(false);
        var body = await response.Content.ReadAsStringAsync().ConfigureAwait(false);
        if (!response.IsSuccessStatusCode) throw new InvalidOperationException($"GET {path}: {(int)response.StatusCode} {body}");
        return new PrometheusScrape(body);
    }

    /// <summary>GETs a path with HTTP Basic authentication by <paramref name="key"/> (none when null).</summary>
    public static async Task<HttpResponseMessage> GetAsync(TestServer server, string? key, string path = "/metrics")
    {
        using var http = new HttpClient { BaseAddress = server.BaseUri };
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        if (key is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(key)));
        return await http.SendAsync(request).ConfigureAwait(false);
    }

    /// <summary>The names of every sample, each once.</summary>
    public IReadOnlyCollection<string> Names => _samples.Select(s => s.Name).ToHashSet(StringComparer.Ordinal);

    /// <summary>The sum of the samples named <paramref name="name"/> whose labels include every one of <paramref name="labels"/>; null when none.</summary>
    public double? Value(string name, params (string Label, string Value)[] labels)
    {
        double? total = null;
        foreach (var (n, ls, v) in _samples)
        {
            if (n != name || !labels.All(l => ls.TryGetValue(l.Label, out var value) && value == l.Value)) continue;
            total = (total ?? 0) + v;
        }

        return total;
    }

    [GeneratedRegex(@"^(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?<labels>.*)\})?\s+(?<value>\S+)")]
    private static partial Regex SampleLine();

    [GeneratedRegex(@"([a-zA-Z_][a-zA-Z0-9_]*)=""((?:[^""\\]|\\.)*)""")]
    private static partial Regex Label();
}
