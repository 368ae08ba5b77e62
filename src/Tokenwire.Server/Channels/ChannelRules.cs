namespace Tokenwire.Server.Channels;

/// <summary>What a channel's namespace says about it: persistence and retention, and its rate limits.</summary>
internal sealed record ChannelRules(bool Persisted, TimeSpan Retention, double MessagesPerSecond, double BytesPerSecond);
