// The baseline a .NET team would write instead of Tokenwire: one hub, a group per channel, the JSON hub protocol.
// Subscribers invoke Join(channel); publishers send fire-and-forget (HubConnection.SendAsync) and the hub broadcasts to
// the group with Clients.Group(channel).SendAsync. A token is one argument object, PublishToken(channel, {name, data,
// extras: {headers}}) -> "m"; the older bare token is Publish(channel, data) -> "t".
using System.Text.Json;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.SignalR;

var builder = WebApplication.CreateBuilder(args);
builder.Logging.SetMinimumLevel(LogLevel.Warning);
builder.WebHost.UseUrls(builder.Configuration["urls"] ?? "http://127.0.0.1:0");
builder.Services.AddSignalR(o =>
{
    o.EnableDetailedErrors = true;
    // Tokens are tiny; the defaults (32 KB max message) are fine. Keep-alive as shipped.
});
var app = builder.Build();
app.MapHub<TokenHub>("/hub");
await app.StartAsync();
foreach (var address in app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses)
{
    Console.WriteLine($"SignalR listening on {address}");
}

await app.WaitForShutdownAsync();

internal sealed class TokenHub : Hub
{
    public Task Join(string channel) => Groups.AddToGroupAsync(Context.ConnectionId, channel);

    public Task Publish(string channel, string data) => Clients.Group(channel).SendAsync("t", data);

    public Task PublishToken(string channel, Token token) => Clients.Group(channel).SendAsync("m", token);
}

/// <summary>A token as the seed's publisher sends it; headers are relayed as they came (any JSON value).</summary>
internal sealed record Token(string Name, string? Data, TokenExtras? Extras);

/// <summary>The token's extras.</summary>
internal sealed record TokenExtras(Dictionary<string, JsonElement> Headers);
