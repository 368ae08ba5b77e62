// RESP client — stands in for StackExchange.Redis, which cannot be restored from this project's package mirror
// (its dependency Pipelines.Sockets.Unofficial is missing). This is its LuaScript/LoadedLuaScript part.
//
// RedisScript: a Lua script with its SHA1 computed once, for EVALSHA with a NOSCRIPT fallback to EVAL.

using System.Security.Cryptography;
using System.Text;

namespace Tokenwire.Server.Engines.Redis.Resp;

/// <summary>A Lua script and its SHA1, as Redis' script cache names it. Create once and reuse.</summary>
internal sealed class RedisScript
{
    /// <summary>Wraps a script.</summary>
    /// <param name="text">The Lua source.</param>
    public RedisScript(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        Text = text;
#pragma warning disable CA5350 // SHA1 is not used for security here: it is the name Redis gives a cached script.
        Sha1 = Convert.ToHexStringLower(SHA1.HashData(Encoding.UTF8.GetBytes(text)));
#pragma warning restore CA5350
    }

    /// <summary>The Lua source.</summary>
    public string Text { get; }

    /// <summary>The SHA1 of the UTF-8 source, lower-case hex (what <c>SCRIPT LOAD</c> returns).</summary>
    public string Sha1 { get; }

    /// <inheritdoc />
    public override string ToString() => Sha1;
}
