using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging.Abstractions;
using Tokenwire.Protocol;
using Tokenwire.Server.Channels;
using Tokenwire.Server.Realtime;

namespace Tokenwire.Server.Tests.Realtime;

/// <summary>
/// What a connection's ACK ledger remembers for re-sent msgSerials (RTN19a2) once a publish that completed later (a
/// persisted channel's, any on the Redis engine) has been acknowledged: its serials, not its task.
/// </summary>
public sealed class AckLedgerTests
{
    private sealed class QueueOnlyTransport() : Transport(WireFormat.Json, echo: true, new TokenwireOptions(), NullLogger.Instance)
    {
        protected override void OnAbort()
        {
        }
    }

    [Fact]
    public async Task An_acknowledged_late_success_is_remembered_by_its_serials_and_its_task_is_let_go()
    {
        var ledger = new AckLedger(null);
        var transport = new QueueOnlyTransport();
        var serial = ChannelSerial.Format(1_764_000_000_000, 7);
        var task = PublishThatCompletesLater(ledger, transport, msgSerial: 5, [serial]);

        ledger.Flush(); // the ACK goes out
        Assert.Equal(1, transport.Queue.QueuedFrames);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        Assert.False(task.IsAlive, "the ledger still holds the publish's task after its ACK");

        Assert.True(ledger.IsResend(5, out var known));
        Assert.True(known.IsCompletedSuccessfully);
        Assert.Equal(new[] { serial }, await known);
    }

    [Fact]
    public async Task The_newest_256_successes_are_remembered_as_the_ring_grows_and_wraps_and_a_ledger_that_never_published_holds_none()
    {
        var before = GC.GetAllocatedBytesForCurrentThread();
        var ledger = new AckLedger(null);
        Assert.InRange(GC.GetAllocatedBytesForCurrentThread() - before, 0, 2048); // a full ring alone is 6 KB

        static string SerialOf(long msgSerial) => ChannelSerial.Format(1_764_000_000_000 + msgSerial, 0);
        for (var m = 0L; m < 600; m++)
        {
            Assert.True(ledger.TryReserve(m, new ValueTask<string?[]>([SerialOf(m)]), out _));
            if (m is 7 or 8 or 255 or 256)
            {
                // Growing keeps every success so far (the newest 256 once full).
                for (var k = Math.Max(0, m - 255); k <= m; k++) Assert.Equal(new[] { SerialOf(k) }, await Known(ledger, k));
            }
        }

        for (var m = 344L; m < 600; m++) Assert.Equal(new[] { SerialOf(m) }, await Known(ledger, m));
        Assert.Empty(await Known(ledger, 343)); // older than the newest 256: an empty ACK, not republished
        Assert.False(ledger.IsResend(600, out _));

        static ValueTask<string?[]> Known(AckLedger ledger, long msgSerial)
        {
            Assert.True(ledger.IsResend(msgSerial, out var known));
            return known;
        }
    }

    [Fact]
    public async Task A_late_success_with_several_serials_keeps_them_all()
    {
        var ledger = new AckLedger(null);
        var transport = new QueueOnlyTransport();
        string?[] serials = [ChannelSerial.Format(1_764_000_000_000, 1), null, "not-a-channel-serial"];
        PublishThatCompletesLater(ledger, transport, msgSerial: 0, serials);
        ledger.Flush();

        Assert.True(ledger.IsResend(0, out var known));
        Assert.Equal(serials, await known);
    }

    [Fact]
    public async Task A_late_failure_is_still_answered_with_its_error_after_the_nack()
    {
        var ledger = new AckLedger(null);
        var transport = new QueueOnlyTransport();
        var completion = new TaskCompletionSource<string?[]>();
        var outcome = new ValueTask<string?[]>(completion.Task);
        Assert.True(ledger.TryReserve(3, outcome, out _));
        ledger.AddPendingAck(3, outcome, transport);
        completion.SetException(new AblyException(ErrorCodes.MessageTooLarge, 400, "too large"));
        ledger.Flush();

        Assert.True(ledger.IsResend(3, out var known));
        Assert.True(known.IsFaulted);
        Assert.Equal(ErrorCodes.MessageTooLarge, (await Assert.ThrowsAsync<AblyException>(() => known.AsTask())).Error.Code);
    }

    // Not inlined, so the test method itself holds no reference to the task it then checks was let go.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static WeakReference PublishThatCompletesLater(AckLedger ledger, Transport transport, long msgSerial, string?[] serials)
    {
        var completion = new TaskCompletionSource<string?[]>();
        var outcome = new ValueTask<string?[]>(completion.Task);
        Assert.True(ledger.TryReserve(msgSerial, outcome, out _));
        ledger.AddPendingAck(msgSerial, outcome, transport);
        completion.SetResult(serials);
        return new WeakReference(completion.Task);
    }
}
