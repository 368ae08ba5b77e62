// The baseline a .NET team would write instead of Tokenwire: one hub, a group per channel, the JSON or MessagePack hub
// protocol (the client chooses).
// Subscribers invoke Join(channel); publishers send fire-and-forget (HubConnection.SendAsync) and the hub broadcasts to
// the group with Clients.Group(channel).SendAsync. A token is one argument object, PublishToken(channel, {name, data,
// extras: {headers}}) -> "m"; the older bare token is Publish(channel, data) -> "t".
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.SignalR;
using Tokenwire.Bench.SignalRServer;

var builder = WebApplication.CreateBuilder(args);
builder.Logging.SetMinimumLevel(LogLevel.Warning);
builder.WebHost.UseUrls(builder.Configuration["urls"] ?? "http://127.0.0.1:0");
builder.Services.AddSignalR(o =>
{
    o.EnableDetailedErrors = true;
    // Tokens are tiny; the defaults (32 KB max message) are fine. Keep-alive as shipped.
}).AddMessagePackProtocol(); // clients choose JSON or MessagePack in the handshake, as Tokenwire's format=

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

namespace Tokenwire.Bench.SignalRServer
{
    /// <summary>A token as the seed's publisher sends it (public: MessagePack's contractless resolver needs public types).</summary>
    public sealed record Token(string Name, string? Data, TokenExtras? Extras);

    /// <summary>The token's extras; header values are relayed as they came (a JsonElement in JSON, a primitive in MessagePack).</summary>
    public sealed record TokenExtras(Dictionary<string, object?> Headers);
}
