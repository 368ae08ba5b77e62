using System.Text.Json;
using Tokenwire.Server.Auth;

namespace Tokenwire.Cli;

/// <summary>
/// <c>tokenwire token</c>: mints a token offline with a key. Tokens are signed with the key's secret, so the token is
/// valid on every Tokenwire server that has that key (browsers get tokens; keys never leave the backend).
/// </summary>
internal static class TokenCommand
{
    public static int Run(string[] args)
    {
        string? key = null, capability = null, clientId = null, ttlText = null, data = "data";
        for (var i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--key": key = Next(); break;
                case "--capability": capability = Next(); break;
                case "--client-id": clientId = Next(); break;
                case "--ttl": ttlText = Next(); break;
                case "--data": data = Next(); break;
                default: throw new ArgumentException($"Unknown option {args[i]}");
            }
        }

        key = KeyDefaults.Resolve(key, data);

        // The key's own capability is not known offline: the server intersects on use, so mint with the requested one.
        var requested = capability is null ? null : Capability.Parse(capability);
        var apiKey = ApiKey.Parse(key, requested ?? Capability.All);
        var keys = new KeyStore();
        keys.Add(apiKey);
        var details = new TokenService(keys, TimeProvider.System).Issue(apiKey, ParseTtl(ttlText), requested, clientId);
        Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object?>
        {
            ["token"] = details.Token,
            ["keyName"] = details.KeyName,
            ["issued"] = details.Issued,
            ["expires"] = details.Expires,
            ["capability"] = details.Capability,
            ["clientId"] = details.ClientId,
        }, Indented));
        return 0;
    }

    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Parses <c>90s</c>, <c>30m</c>, <c>2h</c>, or milliseconds.</summary>
    internal static TimeSpan? ParseTtl(string? text)
    {
        if (string.IsNullOrEmpty(text)) return null;
        var number = long.Parse(text.TrimEnd('s', 'm', 'h'), System.Globalization.CultureInfo.InvariantCulture);
        return text[^1] switch
        {
            's' => TimeSpan.FromSeconds(number),
            'm' => TimeSpan.FromMinutes(number),
            'h' => TimeSpan.FromHours(number),
            _ => TimeSpan.FromMilliseconds(number),
        };
    }
}
