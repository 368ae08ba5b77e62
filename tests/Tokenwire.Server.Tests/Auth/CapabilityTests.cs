using Tokenwire.Protocol;
using Tokenwire.Server.Auth;

namespace Tokenwire.Server.Tests.Auth;

/// <summary>Capability matching and token intersection, with the cases of ably-js' rest/capability tests.</summary>
public sealed class CapabilityTests
{
    [Theory]
    [InlineData("*", "chat", true)]
    [InlineData("*", "chat:1:x", true)]
    [InlineData("*", "[meta]chat", false)]
    [InlineData("[*]*", "[meta]chat", true)]
    [InlineData("chat:*", "chat:1", true)]
    [InlineData("chat:*", "chat:1:2", true)]
    [InlineData("chat:*", "chat", false)]
    [InlineData("chat:*", "chatter:1", false)]
    [InlineData("a:*:c", "a:b:c", true)]
    [InlineData("a:*:c", "a:b:d", false)]
    [InlineData("a:*:c", "a:b:c:d", false)]
    [InlineData("foo*", "foobar", false)]
    [InlineData("foo*", "foo*", true)]
    [InlineData("chat:1", "chat:1", true)]
    [InlineData("chat:1", "chat:2", false)]
    public void Resource_patterns_match_whole_segments(string pattern, string channel, bool expected) =>
        Assert.Equal(expected, Capability.Matches(pattern, channel));

    [Theory]
    [InlineData("""{"*":["push-admin"]}""", true, true)]
    [InlineData("""{"[*]*":["*"]}""", true, true)]
    [InlineData("""{"pushenabled:admin:*":["push-admin"]}""", false, true)]
    [InlineData("""{"*:*":["push-admin"]}""", false, true)]
    [InlineData("""{"*":["push-subscribe"]}""", false, false)]
    public void Push_admin_app_wide_needs_a_resource_covering_every_channel(string json, bool appWide, bool anywhere)
    {
        var capability = Capability.Parse(json);
        Assert.Equal(appWide, capability.AllowsAppWide("push-admin"));
        Assert.Equal(anywhere, capability.AllowsAnywhere("push-admin"));
    }

    [Fact]
    public void Operations_are_checked_per_resource()
    {
        var c = Capability.Parse("""{"chat:*":["subscribe","history"],"agent:*":["publish"]}""");
        Assert.True(c.Allows("chat:1", "subscribe"));
        Assert.True(c.Allows("chat:1", "history"));
        Assert.False(c.Allows("chat:1", "publish"));
        Assert.True(c.Allows("agent:x", "publish"));
        Assert.False(c.Allows("other", "subscribe"));
        Assert.Equal("""{"agent:*":["publish"],"chat:*":["history","subscribe"]}""", c.ToJson());
    }

    [Fact]
    public void No_requested_capability_gives_the_key_capability() =>
        Assert.Equal(Capability.All.ToJson(), Capability.All.Intersect(null).ToJson());

    [Theory]
    [InlineData("""{"channel2":["publish","subscribe"]}""", """{"channel2":["presence","subscribe"]}""", """{"channel2":["subscribe"]}""")]
    [InlineData("""{"channel2":["publish","subscribe"]}""", """{"channel2":["*"]}""", """{"channel2":["publish","subscribe"]}""")]
    [InlineData("""{"canpublish:*":["publish"]}""", """{"canpublish:check":["publish"]}""", """{"canpublish:check":["publish"]}""")]
    [InlineData("""{"*":["subscribe"]}""", """{"cansubscribe":["subscribe"]}""", """{"cansubscribe":["subscribe"]}""")]
    [InlineData("""{"channel6":["*"]}""", """{"*":["publish"]}""", """{"channel6":["publish"]}""")]
    [InlineData("""{"*":["*"]}""", """{"chat:1":["subscribe"]}""", """{"chat:1":["subscribe"]}""")]
    public void Token_capability_is_the_intersection(string key, string requested, string expected) =>
        Assert.Equal(expected, Capability.Parse(key).Intersect(Capability.Parse(requested)).ToJson());

    [Fact]
    public void Empty_intersection_is_refused_with_40160()
    {
        var e = Assert.Throws<AblyException>(() => Capability.Parse("""{"channel0":["publish"]}""").Intersect(Capability.Parse("""{"channel0":["subscribe"]}""")));
        Assert.Equal(40160, e.Code);
        Assert.Equal(401, e.Error.StatusCode);
    }

    [Theory]
    [InlineData("""{"a":["publish_"]}""")]
    [InlineData("""{"a":["*","publish"]}""")]
    [InlineData("""{"a":[]}""")]
    [InlineData("""{"a":"publish"}""")]
    [InlineData("""["publish"]""")]
    [InlineData("not json")]
    public void Invalid_capabilities_are_refused_with_40000(string json)
    {
        var e = Assert.Throws<AblyException>(() => Capability.Parse(json));
        Assert.Equal(40000, e.Code);
        Assert.Equal(400, e.Error.StatusCode);
    }
}
