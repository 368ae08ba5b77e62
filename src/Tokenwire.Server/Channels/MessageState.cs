using System.Text;
using Tokenwire.Protocol;

namespace Tokenwire.Server.Channels;

/// <summary>
/// A mutable message as the operations on it left it (message-per-response: one message, a token appended at a time).
/// Update and delete replace the fields they carry (name, data, encoding, extras); append concatenates data (string
/// onto string, bytes onto bytes) and carries name and extras forward unless it supplies them. The appended text is
/// kept in chunks (UTF-8 while that is smaller: <see cref="AppendedText"/>), so a response of n tokens costs
/// O(total length), not O(n²); the whole message is built only when someone needs it (a first sight, a history page)
/// and kept until the next operation.
/// Not thread-safe: the channel lock (or a single reader folding stored operations) guards it.
/// </summary>
internal sealed class MessageState
{
    private readonly Message _create;
    private string? _name;
    private string? _encoding;
    private OpaqueValue? _extras;
    private object? _data; // string or byte[] as of the last update/delete (or the create), before appends
    private AppendedText? _appendedText;
    private MemoryStream? _appendedBytes;
    private int _dataBytes;
    private Message? _snapshot;
    private AnnotationSummary? _annotations;

    private MessageState(Message create)
    {
        _create = create;
        _name = create.Name;
        _encoding = create.Encoding;
        _extras = create.Extras;
        _data = create.Data;
        _dataBytes = ByteCount(create.Data);
        Version = new MessageVersion { Serial = create.Serial, Timestamp = create.Timestamp };
        LastOperationSerial = create.Serial!;
    }

    /// <summary>The state of a message just created (its stored form, stamped with serial and timestamp).</summary>
    public static MessageState Of(Message create) => new(create);

    /// <summary>The message's serial (its create position).</summary>
    public string Serial => _create.Serial!;

    /// <summary>Who created it: "own" capabilities compare the operation's client with this one.</summary>
    public string? ClientId => _create.ClientId;

    /// <summary><see cref="MessageAction.Create"/> until an operation changed it, then update or delete.</summary>
    public MessageAction Action { get; private set; } = MessageAction.Create;

    /// <summary>The latest version (the create's own serial and time until an operation).</summary>
    public MessageVersion Version { get; private set; }

    /// <summary>The message's annotations (reactions, feedback), or null when it has none.</summary>
    public AnnotationSummary? Annotations => _annotations;

    /// <summary>Adds an annotation (stamped with its serial); the summary changes with it.</summary>
    public void Annotate(Message annotation)
    {
        (_annotations ??= new AnnotationSummary()).Add(annotation);
        _snapshot = null;
    }

    /// <summary>The <c>message.summary</c> a subscriber gets after an annotation: the message's serial and its annotations' summary.</summary>
    public Message SummaryMessage() => new()
    {
        Id = _create.Id,
        Serial = _create.Serial,
        Timestamp = _create.Timestamp,
        ClientId = _create.ClientId,
        Action = MessageAction.Summary,
        Annotations = _annotations?.Summary(),
    };

    /// <summary>
    /// The newest write of this message's records to the store (an operation or annotation), or null: until it has
    /// completed the store lacks part of the message, so the state must stay in memory.
    /// </summary>
    public Task? Storing { get; set; }

    /// <summary>Serial of the newest operation (or of the create): what a window entry must reach back to.</summary>
    public string LastOperationSerial { get; private set; }

    /// <summary>
    /// Checks that an operation can be applied: throws 40013 when an append mixes string and binary data (or
    /// encodings), 40009 when the whole message would exceed <paramref name="maxMessageSize"/>.
    /// </summary>
    public void Check(Message operation, int maxMessageSize)
    {
        int size;
        if (operation.Action == MessageAction.Append)
        {
            var fragment = operation.Data;
            if (fragment is not null && !IsEmpty && (!SameKind(fragment) || operation.Encoding != _encoding))
            {
                throw new AblyException(ErrorCodes.InvalidMessageData, 400, "An append must have the same data type (string or binary) and encoding as the message it appends to");
            }

            size = SizeWith(operation.Name ?? _name, operation.Extras ?? _extras) + _dataBytes + ByteCount(fragment);
        }
        else
        {
            size = SizeWith(operation.Name ?? _name, operation.Extras ?? _extras) + (operation.Data is null ? _dataBytes : ByteCount(operation.Data));
        }

        if (size > maxMessageSize)
        {
            throw new AblyException(ErrorCodes.MessageTooLarge, 400, $"Message size {size} bytes would exceed the maximum of {maxMessageSize} bytes");
        }
    }

    /// <summary>
    /// Applies a checked operation (action update, delete or append; version stamped by the caller) and returns what a
    /// subscriber that already has the message receives: the fragment for an append, the whole message otherwise.
    /// </summary>
    /// <param name="operation">The operation as published (action, data, name, extras it carries).</param>
    /// <param name="version">The version it makes.</param>
    /// <param name="connectionId">The connection that made the operation (delivered as the message's connectionId,
    /// so a subscriber with echo=false does not get its own operations back).</param>
    public Message Apply(Message operation, MessageVersion version, string? connectionId)
    {
        var action = operation.Action!.Value;
        if (action == MessageAction.Append)
        {
            if (IsEmpty && operation.Data is not null) _encoding = operation.Encoding;
            Append(operation.Data);
            _name = operation.Name ?? _name;
            _extras = operation.Extras ?? _extras;
            Action = Action == MessageAction.Delete ? MessageAction.Delete : MessageAction.Update;
        }
        else
        {
            if (operation.Data is not null)
            {
                _data = operation.Data;
                _encoding = operation.Encoding;
                _appendedText = null;
                _appendedBytes = null;
                _dataBytes = ByteCount(operation.Data);
            }

            _name = operation.Name ?? _name;
            _extras = operation.Extras ?? _extras;
            Action = action;
        }

        Version = version;
        LastOperationSerial = version.Serial!;
        _snapshot = null;
        var delivered = Header(action, connectionId);
        delivered.Data = action == MessageAction.Append ? operation.Data : CurrentData();
        return delivered;
    }

    private bool IsEmpty => _data is null && _appendedText is null && _appendedBytes is null;

    /// <summary>The whole message at its latest version, as history and late joiners see it (action create, update or delete).</summary>
    public Message Snapshot()
    {
        if (_snapshot is { } cached) return cached;
        var m = Header(Action, _create.ConnectionId);
        m.Data = CurrentData();
        m.Annotations = _annotations?.Summary();
        return _snapshot = m;
    }

    private Message Header(MessageAction action, string? connectionId) => new()
    {
        Id = _create.Id,
        ClientId = _create.ClientId,
        ConnectionId = connectionId,
        Timestamp = _create.Timestamp, // TM2: always the create time; the operation's is version.timestamp
        Name = _name,
        Encoding = _encoding,
        Extras = _extras,
        Serial = _create.Serial,
        Action = action,
        Version = Version,
    };

    private object? CurrentData()
    {
        if (_appendedText is { } text) return (_data as string) + text.ToString();
        if (_appendedBytes is { } bytes)
        {
            var prefix = _data as byte[] ?? [];
            var result = new byte[prefix.Length + bytes.Length];
            prefix.CopyTo(result, 0);
            bytes.GetBuffer().AsSpan(0, (int)bytes.Length).CopyTo(result.AsSpan(prefix.Length));
            return result;
        }

        return _data;
    }

    private void Append(object? fragment)
    {
        var bytes = ByteCount(fragment);
        switch (fragment)
        {
            case string s when IsEmpty:
                _data = s;
                break;
            case string s:
                (_appendedText ??= new AppendedText()).Append(s, bytes);
                break;
            case byte[] b when IsEmpty:
                _data = b;
                break;
            case byte[] b:
                (_appendedBytes ??= new MemoryStream()).Write(b);
                break;
        }

        _dataBytes += bytes;
    }


    /// <summary>True when <paramref name="fragment"/> is of the data type the message already holds.</summary>
    private bool SameKind(object fragment) =>
        fragment is string ? _data is string or null && _appendedBytes is null : _data is byte[] or null && _appendedText is null;

    private int SizeWith(string? name, OpaqueValue? extras) =>
        (name is null ? 0 : Encoding.UTF8.GetByteCount(name))
        + (_create.ClientId is null ? 0 : Encoding.UTF8.GetByteCount(_create.ClientId))
        + (extras is null ? 0 : extras.JsonLength); // the length only: a msgpack append is not converted to be sized

    private static int ByteCount(object? data) => data switch
    {
        string s => Encoding.UTF8.GetByteCount(s),
        byte[] b => b.Length,
        _ => 0,
    };

}
