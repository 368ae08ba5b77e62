using Tokenwire.Protocol;
using Tokenwire.Server.Channels;

namespace Tokenwire.Server.Tests.Channels;

/// <summary>
/// In-progress response tracking over a hot window that evicts: messages of interleaved responses the window drops
/// are kept (spilled) for responses still tracked, and a response dropped from tracking neither keeps nor disturbs them.
/// </summary>
public sealed class ResponseTrackerTests
{
    private static Message Token(int i, string responseId, string name = "token") => new()
    {
        Id = $"conn:{i}:0",
        Name = name,
        Data = $"{responseId}-{i}",
        Timestamp = 1_700_000_000_000 + i,
        Serial = ChannelSerial.Format(1_700_000_000_000 + i, 0),
        Extras = OpaqueValue.FromJson(System.Text.Encoding.UTF8.GetBytes("{\"headers\":{\"responseId\":\"" + responseId + "\"}}")),
    };

    /// <summary>Adds messages to the window as a channel does, keeping at most <paramref name="keep"/> in it.</summary>
    private static void Publish(MessageWindow window, ResponseTracker tracker, Message m, int keep)
    {
        window.Add(m.Serial!, m.Timestamp!.Value, StoredForm.Encode(m));
        tracker.Observe(m, m.Timestamp!.Value);
        while (window.Count > keep)
        {
            tracker.Evicting();
            window.RemoveFirst();
        }
    }

    [Fact]
    public void Interleaved_responses_are_served_whole_after_the_window_dropped_their_start()
    {
        var window = new MessageWindow();
        var tracker = new ResponseTracker(new ResponseTrackingOptions(), window);
        var expected = new Dictionary<string, List<string>> { ["a"] = [], ["b"] = [], ["c"] = [] };
        for (var i = 0; i < 300; i++)
        {
            // a on every other message, b on every third of the rest, c on the others; c ends at 200.
            var id = i % 2 == 0 ? "a" : i % 3 == 0 ? "b" : "c";
            if (id == "c" && i >= 200) id = "a";
            var name = id == "c" && i == 199 ? "stop" : "token";
            var m = Token(i, id, name);
            Publish(window, tracker, m, keep: 10);
            if (name == "token") expected[id].Add(m.Data as string ?? "");
        }

        var snapshot = tracker.Snapshot(untilSerial: null).ToDictionary(r => r.ResponseId, r => r.Messages.Select(m => (string)m.Data!).ToList());
        Assert.Equal(expected["a"], snapshot["a"]);
        Assert.Equal(expected["b"], snapshot["b"]);
        Assert.False(snapshot.ContainsKey("c")); // ended
        Assert.Equal(10, window.Count);
    }

    [Fact]
    public void A_response_dropped_from_tracking_does_not_disturb_the_spills_of_others()
    {
        var window = new MessageWindow();
        var tracker = new ResponseTracker(new ResponseTrackingOptions { MaxResponsesPerChannel = 2 }, window);
        var kept = new List<string>();
        for (var i = 0; i < 120; i++)
        {
            // "long" runs throughout; short responses come and go, each pushing the least recently active one out.
            var id = i % 2 == 0 ? "long" : $"short-{i / 10}";
            var m = Token(i, id);
            Publish(window, tracker, m, keep: 7);
            if (id == "long") kept.Add(m.Data as string ?? "");
        }

        var responses = tracker.Snapshot(untilSerial: null);
        Assert.Equal(2, tracker.Count);
        var longOne = Assert.Single(responses, r => r.ResponseId == "long");
        Assert.Equal(kept, longOne.Messages.Select(m => m.Data as string));
        var shortOne = Assert.Single(responses, r => r.ResponseId != "long");
        Assert.Equal("short-11", shortOne.ResponseId);
        Assert.Equal(Enumerable.Range(111, 9).Where(i => i % 2 == 1).Select(i => $"short-11-{i}"), shortOne.Messages.Select(m => m.Data as string));
    }

    [Fact]
    public void At_its_bound_the_tracker_drops_the_least_recently_active_response_and_a_restarted_one_replaces_itself()
    {
        var window = new MessageWindow();
        var tracker = new ResponseTracker(new ResponseTrackingOptions { MaxResponsesPerChannel = 2 }, window);
        Publish(window, tracker, Token(0, "a"), keep: 100);
        Publish(window, tracker, Token(1, "b"), keep: 100);
        Publish(window, tracker, Token(2, "a"), keep: 100); // a started first but was active last
        Publish(window, tracker, Token(3, "c"), keep: 100);
        Assert.Equal(["a", "c"], tracker.Snapshot(untilSerial: null).Select(r => r.ResponseId).Order());

        // a ends, then a new response under the same id starts: it takes a's place and c stays.
        Publish(window, tracker, Token(4, "a", name: "stop"), keep: 100);
        Publish(window, tracker, Token(5, "a"), keep: 100);
        var responses = tracker.Snapshot(untilSerial: null);
        Assert.Equal(["a", "c"], responses.Select(r => r.ResponseId).Order());
        Assert.Equal(["a-5"], responses.Single(r => r.ResponseId == "a").Messages.Select(m => m.Data as string));
    }

    [Fact]
    public void Copies_of_evicted_messages_stay_within_the_channel_bound_and_the_response_that_passes_it_is_dropped_whole()
    {
        const long bound = 16 * 1024;
        var window = new MessageWindow();
        var tracker = new ResponseTracker(new ResponseTrackingOptions { MaxSpilledBytesPerChannel = bound }, window);
        for (var i = 0; i < 2_000; i++)
        {
            // Two long responses, neither ending, in a window of 20 messages: both need copies of what it drops.
            Publish(window, tracker, Token(i, i % 2 == 0 ? "a" : "b"), keep: 20);
            Assert.InRange(tracker.SpilledBytes, 0, bound);

            // A response given up on is not tracked again from the middle: whatever is served starts at its first message.
            foreach (var (id, messages) in tracker.Snapshot(untilSerial: null))
            {
                Assert.Equal($"{id}-{(id == "a" ? 0 : 1)}", (string)messages[0].Data!);
            }
        }

        Assert.Empty(tracker.Snapshot(untilSerial: null)); // both passed the bound in the end
    }

    [Fact]
    public void The_servers_total_of_copies_follows_every_channels_spills_and_releases()
    {
        // Two channels' trackers report to one total (/health/ready's inProgressResponses.copiedBytes).
        var total = new SharedCount();
        var (windowA, windowB) = (new MessageWindow(), new MessageWindow());
        var a = new ResponseTracker(new ResponseTrackingOptions(), windowA, total);
        var b = new ResponseTracker(new ResponseTrackingOptions { MaxSpilledBytesPerChannel = 4 * 1024 }, windowB, total);
        for (var i = 0; i < 300; i++)
        {
            Publish(windowA, a, Token(i, "ra"), keep: 10);
            Publish(windowB, b, Token(i, "rb"), keep: 10);
            Assert.Equal(a.SpilledBytes + b.SpilledBytes, total.Value);
        }

        Assert.True(a.SpilledBytes > 0);
        Assert.Empty(b.Snapshot(untilSerial: null)); // b passed its bound: dropped, its copies freed
        Assert.Equal(0, b.SpilledBytes);
        Assert.Equal(a.SpilledBytes, total.Value);

        a.Release(); // the channel is discarded
        Assert.Equal(0, total.Value);
        a.Release();
        Assert.Equal(0, total.Value);
    }

    [Fact]
    public void A_response_longer_than_the_message_bound_is_not_tracked_again_from_its_middle()
    {
        var window = new MessageWindow();
        var tracker = new ResponseTracker(new ResponseTrackingOptions { MaxMessagesPerResponse = 5 }, window);
        for (var i = 0; i < 12; i++) Publish(window, tracker, Token(i, "a"), keep: 100);
        Publish(window, tracker, Token(12, "b"), keep: 100);

        Assert.Equal(["b"], tracker.Snapshot(untilSerial: null).Select(r => r.ResponseId));
        Publish(window, tracker, Token(13, "a", name: "stop"), keep: 100);
        tracker.Sweep(now: 1_700_000_000_013 + 1, endedRetention: TimeSpan.Zero);
        Assert.Equal(1, tracker.Count); // the given-up response is forgotten once it ended
    }
    [Fact]
    public void Responses_replaced_at_the_bound_reuse_their_keys_arrays_and_keep_their_own_keys()
    {
        // A busy channel replaces its tracked responses all the time. Their keys (one per token) used to be allocated
        // for each response and die in gen2; they now come from the shared pool and go back when a response is dropped.
        const int tokens = 200;
        var window = new MessageWindow();
        var tracker = new ResponseTracker(new ResponseTrackingOptions { MaxResponsesPerChannel = 10 }, window);
        var messages = Enumerable.Range(0, 60 * tokens).Select(i => Token(i, $"r{i / tokens}")).ToArray();
        var serials = messages.Select(m => m.Serial!).ToArray();
        var next = 0;
        void PublishResponses(int count)
        {
            // Only observed: with no spill (the window never drops one), the tracker reads nothing back.
            for (var end = next + (count * tokens); next < end; next++) tracker.Observe(messages[next], messages[next].Timestamp!.Value);
        }

        PublishResponses(30); // warm: the pool holds arrays of every size a response grows through
        var before = GC.GetAllocatedBytesForCurrentThread();
        PublishResponses(30);
        var perResponse = (GC.GetAllocatedBytesForCurrentThread() - before) / 30;

        // 200 keys are 1.6 KB, and a list growing to them copies through 4 KB of arrays: neither is allocated now.
        Assert.InRange(perResponse, 0, 1_024);
        foreach (var m in messages.Skip(50 * tokens)) window.Add(m.Serial!, m.Timestamp!.Value, StoredForm.Encode(m));
        var snapshot = tracker.Snapshot(untilSerial: null);
        Assert.Equal(Enumerable.Range(50, 10).Select(r => $"r{r}"), snapshot.Select(r => r.ResponseId));
        foreach (var (id, served) in snapshot)
        {
            var first = int.Parse(id[1..], System.Globalization.CultureInfo.InvariantCulture) * tokens;
            Assert.Equal(serials[first..(first + tokens)], served.Select(m => m.Serial));
        }
    }
}
