using System.Text;
using Tokenwire.Server.Engines.Redis.Resp;

namespace Tokenwire.Server.Tests.Redis;

/// <summary>Command encoding and connection-string parsing, without a server.</summary>
public sealed class RespClientUnitTests
{
    [Fact]
    public void Commands_are_arrays_of_bulk_strings()
    {
        var bytes = RespCommandEncoder.Encode(["SET", "kéy", new byte[] { 0, 13, 10, 255 }, 42, -7L, 1.5]);
        byte[] expected =
        [
            .. "*6\r\n$3\r\nSET\r\n$4\r\n"u8, .. Encoding.UTF8.GetBytes("kéy"), .. "\r\n$4\r\n"u8, 0, 13, 10, 255,
            .. "\r\n$2\r\n42\r\n$2\r\n-7\r\n$3\r\n1.5\r\n"u8,
        ];
        Assert.Equal(expected, bytes);
    }

    [Fact]
    public void Memory_arguments_are_sent_raw_and_long_arguments_get_long_headers()
    {
        var big = new byte[12_345];
        big.AsSpan().Fill((byte)'z');
        var bytes = RespCommandEncoder.Encode(new ReadOnlyMemory<byte>[] { "ECHO"u8.ToArray(), big.AsMemory(1) });
        var text = Encoding.ASCII.GetString(bytes);
        Assert.StartsWith("*2\r\n$4\r\nECHO\r\n$12344\r\nzzz", text);
        Assert.EndsWith("z\r\n", text);
        Assert.Equal(4 + 10 + 8 + 12_344 + 2, bytes.Length);
    }

    [Fact]
    public void Infinities_are_spelled_as_redis_wants_and_bad_arguments_throw()
    {
        Assert.Contains("+inf", Encoding.ASCII.GetString(RespCommandEncoder.Encode(["ZADD", "z", double.PositiveInfinity, "m"])));
        Assert.Contains("-inf", Encoding.ASCII.GetString(RespCommandEncoder.Encode(["ZADD", "z", double.NegativeInfinity, "m"])));
        Assert.Throws<ArgumentException>(() => RespCommandEncoder.Encode(Array.Empty<object>()));
        Assert.Throws<ArgumentException>(() => RespCommandEncoder.Encode(["GET", null!]));
        Assert.Throws<ArgumentException>(() => RespCommandEncoder.Encode(["GET", DateTime.UtcNow]));
        Assert.Throws<ArgumentException>(() => RespCommandEncoder.Encode(["SET", "k", double.NaN]));
    }

    [Fact]
    public void Parses_a_stackexchange_style_connection_string()
    {
        var o = RedisOptions.Parse(" redis.local:6380, password = p@ss=word ,db=3,connectTimeout=250,commandTimeout=1500,connectRetry=5,user=svc ");
        Assert.Equal("redis.local", o.Host);
        Assert.Equal(6380, o.Port);
        Assert.Equal("p@ss=word", o.Password);
        Assert.Equal("svc", o.User);
        Assert.Equal(3, o.Database);
        Assert.Equal(TimeSpan.FromMilliseconds(250), o.ConnectTimeout);
        Assert.Equal(TimeSpan.FromMilliseconds(1500), o.CommandTimeout);
        Assert.Equal(5, o.ConnectRetry);

        var d = RedisOptions.Parse("localhost");
        Assert.Equal(("localhost", 6379, 0, null), (d.Host, d.Port, d.Database, d.Password));
        Assert.Equal(TimeSpan.FromSeconds(5), d.CommandTimeout);
        Assert.Equal(TimeSpan.FromSeconds(5), d.ConnectTimeout);

        var v6 = RedisOptions.Parse("[::1]:7000,defaultDatabase=2");
        Assert.Equal(("::1", 7000, 2), (v6.Host, v6.Port, v6.Database));
    }

    [Fact]
    public void Parses_a_redis_url()
    {
        var o = RedisOptions.Parse("redis://:p%40ss%2Cw@10.0.0.5:6390/4");
        Assert.Equal(("10.0.0.5", 6390, "p@ss,w", (string?)null, 4), (o.Host, o.Port, o.Password, o.User, o.Database));
        var u = RedisOptions.Parse("redis://svc:pw@cache");
        Assert.Equal(("cache", 6379, "pw", "svc", 0), (u.Host, u.Port, u.Password, u.User, u.Database));
        var v6 = RedisOptions.Parse("redis://[::1]:6400");
        Assert.Equal(("::1", 6400), (v6.Host, v6.Port));
    }

    [Theory]
    [InlineData("")]
    [InlineData("password=x")] // no host
    [InlineData("a:1,b:2")] // two endpoints
    [InlineData("host:notaport")]
    [InlineData("host:70000")]
    [InlineData("host,db=-1")]
    [InlineData("host,commandTimeout=0")]
    [InlineData("host,ssl=true")] // unknown option: refused, not ignored
    [InlineData("::1:6379")] // IPv6 without brackets
    [InlineData("rediss://host:6379")] // TLS is not supported
    [InlineData("redis://host/abc")]
    [InlineData("redis://host/1?timeout=3")]
    public void Refuses_invalid_connection_strings(string s)
    {
        Assert.Throws<FormatException>(() => RedisOptions.Parse(s));
    }

    [Fact]
    public void ToString_does_not_leak_the_password()
    {
        var text = RedisOptions.Parse("h:1,password=hunter2").ToString();
        Assert.DoesNotContain("hunter2", text);
        Assert.Contains("password=*****", text);
    }

    [Fact]
    public void Script_sha1_is_what_redis_computes()
    {
        // SHA1("return 1"), as SCRIPT LOAD reports it.
        Assert.Equal("e0e1f9fabfc9d4800c877a703b823ac0578ff8db", new RedisScript("return 1").Sha1);
    }
}
