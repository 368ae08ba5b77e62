using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Tokenwire.Protocol;

namespace Tokenwire.Client.Internal;

/// <summary>
/// <c>authUrl</c> (RSA8c): asks the application's own endpoint for a token. It may answer a token string, TokenDetails,
/// or a TokenRequest signed by the application's backend, which is then exchanged at
/// <c>POST /keys/{keyName}/requestToken</c> (the key itself never reaches this client).
/// </summary>
internal static class AuthUrlClient
{
    public static Func<TokenParams?, CancellationToken, Task<string>> CreateCallback(ClientOptions options)
    {
        var authUrl = options.AuthUrl!;
        var http = options.HttpMessageHandler is { } handler ? new HttpClient(handler, disposeHandler: false) : new HttpClient();
        return async (parameters, cancellationToken) =>
        {
            var query = new List<string>();
            foreach (var (k, v) in options.AuthParams ?? new Dictionary<string, string>()) query.Add(Uri.EscapeDataString(k) + "=" + Uri.EscapeDataString(v));
            if (parameters?.ClientId is { } clientId) query.Add("clientId=" + Uri.EscapeDataString(clientId));
            var builder = new UriBuilder(authUrl);
            var existing = builder.Query.TrimStart('?');
            builder.Query = string.Join('&', new[] { existing }.Where(s => s.Length > 0).Concat(query));
            using var request = new HttpRequestMessage(HttpMethod.Get, builder.Uri);
            request.Headers.Accept.ParseAdd("application/json, text/plain");
            using var response = await http.SendAsync(request, cancellationToken).ConfigureAwait(false);
            var body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                throw new AblyException(40170, 401, $"authUrl answered HTTP {(int)response.StatusCode}");
            }

            var mediaType = response.Content.Headers.ContentType?.MediaType ?? string.Empty;
            if (mediaType is "text/plain" or "application/jwt") return body.Trim();
            if (mediaType != "application/json") throw new AblyException(40170, 401, $"authUrl answered an unsupported content type '{mediaType}'");
            using var document = JsonDocument.Parse(body);
            var root = document.RootElement;
            if (root.ValueKind == JsonValueKind.String) return root.GetString()!;
            if (root.TryGetProperty("token", out var token) && token.ValueKind == JsonValueKind.String) return token.GetString()!;
            if (root.TryGetProperty("keyName", out var keyName) && keyName.ValueKind == JsonValueKind.String)
            {
                return await ExchangeAsync(http, options, keyName.GetString()!, body, cancellationToken).ConfigureAwait(false);
            }

            throw new AblyException(40170, 401, "authUrl answered JSON that is neither TokenDetails nor a TokenRequest");
        };
    }

    private static async Task<string> ExchangeAsync(HttpClient http, ClientOptions options, string keyName, string tokenRequest, CancellationToken cancellationToken)
    {
        var uri = new Uri(options.RestBaseUri, "keys/" + Uri.EscapeDataString(keyName) + "/requestToken");
        using var content = new StringContent(tokenRequest, Encoding.UTF8);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        using var response = await http.PostAsync(uri, content, cancellationToken).ConfigureAwait(false);
        var body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
        using var document = JsonDocument.Parse(body.Length == 0 ? "{}" : body);
        if (!response.IsSuccessStatusCode)
        {
            var error = document.RootElement.TryGetProperty("error", out var e) ? e : default;
            var code = error.ValueKind == JsonValueKind.Object && error.TryGetProperty("code", out var c) && c.TryGetInt32(out var ci) ? ci : 40170;
            var message = error.ValueKind == JsonValueKind.Object && error.TryGetProperty("message", out var m) ? m.GetString() : null;
            throw new AblyException(code, (int)response.StatusCode, message ?? "Token request refused");
        }

        return document.RootElement.GetProperty("token").GetString()!;
    }
}
