using System.Net;
using System.Text.Json;
using Tokenwire.Protocol;
using Tokenwire.Testing;

namespace Tokenwire.Server.Tests.Observability;

/// <summary>The admin page's list of nodes on one node (the in-memory engine): the node itself, with its counts now.</summary>
public sealed class AdminNodesTests
{
    [Fact]
    public async Task On_one_node_the_admin_page_lists_the_node_itself_with_its_counts_now()
    {
        await using var server = await TestServer.StartAsync();
        await using var first = await RawClient.ConnectAsync(server);
        await using var second = await RawClient.ConnectAsync(server, WireFormat.MsgPack);
        await first.AttachAsync("admin-one-node");
        await first.PublishAsync("admin-one-node", 0, new Message { Name = "t", Data = "x" });
        await first.ReceiveUntilAsync(m => m.Action == ProtocolAction.Ack, TimeSpan.FromSeconds(10));

        using var http = server.RestClient();
        var response = await http.GetAsync("/admin/api/overview");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var overview = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        var node = Assert.Single(overview.GetProperty("nodes").EnumerateArray());
        Assert.Equal(JsonValueKind.Null, node.GetProperty("node").ValueKind); // no node id without Redis
        Assert.True(node.GetProperty("current").GetBoolean());
        Assert.Equal(2, node.GetProperty("connections").GetInt32());
        Assert.Equal(overview.GetProperty("channelCount").GetInt32(), node.GetProperty("channels").GetInt32()); // the metachannels published to count too
        Assert.Contains(overview.GetProperty("channels").EnumerateArray(), c => c.GetProperty("name").GetString() == "admin-one-node");
        Assert.Equal(1, node.GetProperty("attachments").GetInt32());
        Assert.Equal(1, node.GetProperty("messagesPublished").GetInt64());
        Assert.Equal(overview.GetProperty("connections").GetProperty("connected").GetInt32(), node.GetProperty("connections").GetInt32());
        Assert.Equal(Environment.MachineName, node.GetProperty("host").GetString());
        Assert.False(string.IsNullOrEmpty(node.GetProperty("version").GetString()));
    }
}
