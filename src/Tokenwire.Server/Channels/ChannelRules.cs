namespace Tokenwire.Server.Channels;

/// <summary>What a channel's namespace says about it: persistence and retention, its rate limits, and whether its
/// messages may be updated, deleted and appended to (mutable channels always keep history).</summary>
internal sealed record ChannelRules(bool Persisted, TimeSpan Retention, double MessagesPerSecond, double BytesPerSecond, bool MutableMessages = false);
