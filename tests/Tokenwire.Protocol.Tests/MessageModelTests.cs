namespace Tokenwire.Protocol.Tests;

/// <summary>
/// The fields only some frames and messages carry are kept apart from the common ones (so a token's objects stay small);
/// they must behave as plain properties all the same.
/// </summary>
public sealed class MessageModelTests
{
    [Fact]
    public void A_clone_has_its_own_rare_fields()
    {
        var original = new Message { Name = "n", MessageSerial = "s1", AnnotationType = "reaction:distinct.v1", Count = 2, ConnectionKey = "k" };
        var copy = original.Clone();
        copy.MessageSerial = "s2";
        copy.Count = null;
        copy.ConnectionKey = null;

        Assert.Equal(("s1", 2, "k"), (original.MessageSerial, original.Count, original.ConnectionKey));
        Assert.Equal(("s2", (int?)null, (string?)null, "reaction:distinct.v1"), (copy.MessageSerial, copy.Count, copy.ConnectionKey, copy.AnnotationType));
    }

    [Fact]
    public void Rare_fields_read_null_until_set_and_can_be_cleared()
    {
        var frame = new ProtocolMessage(ProtocolAction.Ack) { MsgSerial = 3 };
        Assert.Null(frame.Count);
        Assert.Null(frame.Res);
        Assert.Null(frame.Error);
        frame.Count = null; // setting null on a frame with none is a no-op
        frame.Count = 2;
        frame.Res = [new PublishResult(["a"]), new PublishResult(["b"])];
        frame.Error = new ErrorInfo(40000, 400, "bad");
        frame.Params = new Dictionary<string, string> { ["rewind"] = "1" };
        frame.AuthAccessToken = "t";
        frame.Presence = [];
        frame.Annotations = [];
        frame.ConnectionDetails = new ConnectionDetails { ClientId = "c" };

        Assert.Equal(2, frame.Count);
        Assert.Equal(2, frame.Res!.Count);
        Assert.Equal(40000, frame.Error!.Code);
        Assert.Equal("1", frame.Params!["rewind"]);
        Assert.Equal("t", frame.AuthAccessToken);
        Assert.True(frame.HasPresence);
        Assert.NotNull(frame.Annotations);
        Assert.Equal("c", frame.ConnectionDetails!.ClientId);

        frame.Error = null;
        frame.Presence = null;
        Assert.Null(frame.Error);
        Assert.False(frame.HasPresence);
        Assert.Equal(2, frame.Count);
    }
}
