using System.CommandLine;
using System.Text.Json;
using Tokenwire.Server.Auth;

namespace Tokenwire.Cli;

/// <summary>
/// <c>tokenwire token</c>: mints a token offline with a key. Tokens are signed with the key's secret, so the token is
/// valid on every Tokenwire server that has that key (browsers get tokens; keys never leave the backend).
/// </summary>
internal static class TokenCommand
{
    public static Command Create()
    {
        var key = new Option<string>("--key") { Description = "The signing key (default: $TOKENWIRE_KEY, or data/dev-root-key.txt)", HelpName = "key" };
        var capability = new Option<string>("--capability") { Description = "e.g. '{\"chat:1\":[\"subscribe\",\"history\"]}' (default: the key's)", HelpName = "json" };
        var clientId = new Option<string>("--client-id") { Description = "Bind the token to a clientId ('*' = any)", HelpName = "id" };
        var ttl = new Option<TimeSpan?>("--ttl")
        {
            Description = "Lifetime: 90s, 30m, 2h or milliseconds (default 1h, at most 24h)",
            HelpName = "t",
            CustomParser = r =>
            {
                var text = r.Tokens[0].Value;
                if (ParseTtl(text) is { } value && value > TimeSpan.Zero) return value;
                r.AddError($"--ttl must be a duration such as 90s, 30m, 2h or a number of milliseconds, not '{text}'");
                return null;
            },
        };
        var data = new Option<string>("--data") { Description = "Data folder holding dev-root-key.txt", HelpName = "dir", DefaultValueFactory = _ => "data" };
        var command = new Command("token", "Mint a token offline with a key (valid on every server that has the key).") { key, capability, clientId, ttl, data };
        command.SetAction(result =>
        {
            try
            {
                return Run(KeyDefaults.Resolve(result.GetValue(key), result.GetValue(data)!), result.GetValue(capability), result.GetValue(clientId), result.GetValue(ttl), result.InvocationConfiguration.Output);
            }
            catch (Exception e) when (e is ArgumentException or Protocol.AblyException)
            {
                return CommandLine.Fail(result.InvocationConfiguration.Error, "token", e is Protocol.AblyException a ? a.Error.Message : e.Message);
            }
        });
        return command;
    }

    private static int Run(string key, string? capability, string? clientId, TimeSpan? ttl, TextWriter output)
    {
        // The key's own capability is not known offline: the server intersects on use, so mint with the requested one.
        var requested = capability is null ? null : Capability.Parse(capability);
        var apiKey = ApiKey.Parse(key, requested ?? Capability.All);
        var keys = new KeyStore();
        keys.Add(apiKey);
        var details = new TokenService(keys, TimeProvider.System).Issue(apiKey, ttl, requested, clientId);
        output.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object?>
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
        if (!long.TryParse(text.TrimEnd('s', 'm', 'h'), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var number)) return null;
        return text[^1] switch
        {
            's' => TimeSpan.FromSeconds(number),
            'm' => TimeSpan.FromMinutes(number),
            'h' => TimeSpan.FromHours(number),
            _ => TimeSpan.FromMilliseconds(number),
        };
    }
}
