using Tokenwire.Protocol;
using Tokenwire.Server.Channels;

namespace Tokenwire.Server.Engines.Redis;

/// <summary>
/// Mutable channels: a message's state read from any node, its create from the channel's stream and its operations and
/// annotations from its own operations stream (<see cref="RedisKeys.Operations"/>), folded with the shared rules
/// (<see cref="MessageOperations.Fold"/>). A read costs the message's own operations, never a scan of the channel.
/// </summary>
internal static class RedisMessageReader
{
    /// <summary>The create of a message by serial, or null (no such entry, or the entry is an operation or annotation).</summary>
    public static async Task<Message?> ReadCreateAsync(RedisChannelEngine engine, string tag, string serial)
    {
        if (!ChannelSerial.IsValid(serial) || (ChannelSerial.TryParse(serial, out _, out var seq) && seq == 0)) return null;
        var id = RedisKeys.EntryIdOf(serial);
        var found = await engine.ReadRangeAsync(RedisKeys.Log(tag), id, id, 1).ConfigureAwait(false);
        return found is [{ } create] && !MessageOperations.IsOperation(create) && !MessageOperations.IsAnnotation(create) ? create : null;
    }

    /// <summary>The operations and annotations of a message after <paramref name="afterId"/> up to <paramref name="upToId"/> (inclusive), oldest first.</summary>
    public static async Task<List<(string Id, Message Record)>> ReadOperationsAsync(RedisChannelEngine engine, string tag, string serial, string afterId = "0-0", string upToId = "+")
    {
        var result = new List<(string, Message)>();
        var from = afterId;
        while (true)
        {
            var page = await engine.ReadEntriesAsync(RedisKeys.Operations(tag, serial), "(" + from, upToId, 1000).ConfigureAwait(false);
            result.AddRange(page);
            if (page.Count < 1000) return result;
            from = page[^1].Id;
        }
    }

    /// <summary>A message's state as of <paramref name="upToId"/> (its create and the operations up to it), with the newest operation id folded, or null.</summary>
    public static async Task<(MessageState State, string LastId)?> LoadAsync(RedisChannelEngine engine, string tag, string serial, string upToId = "+")
    {
        if (await ReadCreateAsync(engine, tag, serial).ConfigureAwait(false) is not { } create) return null;
        var operations = await ReadOperationsAsync(engine, tag, serial, upToId: upToId).ConfigureAwait(false);
        var state = MessageOperations.Fold(create, operations.Select(o => o.Record));
        return (state, operations.Count > 0 ? operations[^1].Id : "0-0");
    }

    /// <summary>A message at its latest version (<see cref="IChannelEngine.GetMessageAsync"/>), or null.</summary>
    public static async Task<Message?> LatestAsync(RedisChannelEngine engine, string tag, string serial) =>
        (await LoadAsync(engine, tag, serial).ConfigureAwait(false))?.State.Snapshot();

    /// <summary>The versions of a message, oldest first (<see cref="MessageOperations.Versions"/>), or null.</summary>
    public static async Task<List<Message>?> VersionsAsync(RedisChannelEngine engine, string tag, string serial)
    {
        if (await ReadCreateAsync(engine, tag, serial).ConfigureAwait(false) is not { } create) return null;
        var operations = await ReadOperationsAsync(engine, tag, serial).ConfigureAwait(false);
        return MessageOperations.Versions(create, operations.Select(o => o.Record));
    }

    /// <summary>The annotations of a message, oldest first, or null when there is no such message.</summary>
    public static async Task<List<Message>?> AnnotationsAsync(RedisChannelEngine engine, string tag, string serial)
    {
        if (await ReadCreateAsync(engine, tag, serial).ConfigureAwait(false) is null) return null;
        var operations = await ReadOperationsAsync(engine, tag, serial).ConfigureAwait(false);
        return [.. operations.Select(o => o.Record).Where(MessageOperations.IsAnnotation)];
    }

    /// <summary>
    /// Messages (creates, in the order given) at their latest versions as of <paramref name="upToId"/>: those with
    /// operations folded (their operations streams read together, pipelined by the multiplexer).
    /// </summary>
    public static async Task<List<Message>> LatestVersionsAsync(RedisChannelEngine engine, string tag, List<Message> creates, string upToId = "+")
    {
        var reads = creates.Select(m => ReadOperationsAsync(engine, tag, m.Serial!, upToId: upToId)).ToList();
        await Task.WhenAll(reads).ConfigureAwait(false);
        var result = new List<Message>(creates.Count);
        for (var i = 0; i < creates.Count; i++)
        {
            var operations = reads[i].Result;
            result.Add(operations.Count == 0 ? creates[i] : MessageOperations.Fold(creates[i], operations.Select(o => o.Record)).Snapshot());
        }

        return result;
    }

    /// <summary>The target serial of a channel stream entry: the message it creates, changes or annotates.</summary>
    public static string TargetOf(Message m) => MessageOperations.IsAnnotation(m) ? m.MessageSerial! : m.Serial!;

    /// <summary>The serial of the channel stream entry a decoded message came from (an operation's is its version serial).</summary>
    public static string EntrySerialOf(Message m) => !MessageOperations.IsAnnotation(m) && MessageOperations.IsOperation(m) ? m.Version!.Serial! : m.Serial!;

    /// <summary>True for an entry that is not a message of its own (an operation or annotation).</summary>
    public static bool IsChange(Message m) => MessageOperations.IsAnnotation(m) || MessageOperations.IsOperation(m);
}
