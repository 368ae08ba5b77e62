using System.Diagnostics;
using Tokenwire.Protocol;

namespace Tokenwire.Server.Observability;

/// <summary>
/// Times the AI responses of one channel as its messages are ordered, for both streaming patterns:
/// <list type="bullet">
/// <item>message-per-token: messages carrying the response id header (<c>extras.headers.responseId</c>); <c>start</c>
/// starts a response, each <c>token</c> is a token, <c>stop</c> ends it, <c>response-complete</c> ends it as
/// recovered; other names (an app's own, such as the demo's <c>prompt</c>) are not part of the timing. A response
/// without <c>start</c> starts at its first token.</item>
/// <item>message-per-response: a mutable message is a response; its create is the start, each append a token, and an
/// append or update whose <c>status</c> header is an end status (or a delete) ends it.</item>
/// </list>
/// A response with no message for <see cref="ObservabilityOptions.ResponseIdleTimeout"/> ends as <c>unfinished</c>
/// (<see cref="ResponseMonitor"/> sweeps). Records time to first token, the gap before every token (the first token's
/// gap is from <c>start</c>), duration and token count, labelled by namespace and pattern.
/// <para>The fan-out calls <see cref="Observe"/> under the channel lock; a lock of its own guards the state against
/// the sweep. Per token: one header lookup (shared with response tracking), one dictionary lookup, two histogram records.</para>
/// </summary>
internal sealed class ResponseObserver(string channel, ServerMetrics metrics, ResponseMonitor monitor)
{
    private const int MaxIdLength = 256;
    private const int RecentCreates = 64;

    private readonly Lock _lock = new();
    private readonly Dictionary<string, Response> _active = new(StringComparer.Ordinal);
    private readonly NamespaceSeries _series = metrics.SeriesFor(channel);
    private readonly string _idHeader = monitor.ResponseIdHeader;
    // Mutable channels: when recent creates were ordered, so the first append can measure from its create.
    private (string? Serial, long Ticks)[]? _creates;
    private int _nextCreate;

    public string Channel { get; } = channel;

    public string Namespace => _series.Label;

    /// <summary>Observes one ordered message (or operation) of the channel.</summary>
    /// <param name="m">The message, or for an operation what subscribers receive (an append's fragment).</param>
    /// <param name="isOperation">True for an update, delete or append of a mutable message.</param>
    /// <param name="mutable">True when the channel's messages can change (creates may be responses).</param>
    /// <param name="now">When it was ordered (<see cref="Stopwatch.GetTimestamp"/>).</param>
    public void Observe(Message m, bool isOperation, bool mutable, long now)
    {
        if (isOperation)
        {
            ObserveOperation(m, now);
            return;
        }

        if (m.Extras is not { } extras)
        {
            if (mutable) RememberCreate(m.Serial, now);
            return;
        }

        // The same lookup as response tracking's, so the extras are parsed once per message (OpaqueValue remembers it).
        if (extras.GetHeader(_idHeader) is not { Length: > 0 and <= MaxIdLength } id)
        {
            if (mutable) RememberCreate(m.Serial, now);
            return;
        }

        ObserveToken(id, m.Name, now);
    }

    private void ObserveToken(string id, string? name, long now)
    {
        lock (_lock)
        {
            _active.TryGetValue(id, out var response);
            var names = monitor.Names;
            if (name == names.Start)
            {
                if (response is null) Begin(id, perResponse: false, now, now);
                return;
            }

            if (name == names.Stop || name == names.Complete)
            {
                var recovered = name == names.Complete;
                if (recovered) metrics.ResponsesRecovered.Add(1, _series.PerToken);
                if (response is not null) End(response, recovered ? "recovered" : "stop", now);
                return;
            }

            if (name != names.Token) return;
            response ??= Begin(id, perResponse: false, startTicks: null, now);
            Token(response, now);
        }
    }

    private void ObserveOperation(Message m, long now)
    {
        if (m.Serial is not { } serial) return;
        var ends = m.Action == MessageAction.Delete;
        if (!ends && m.Extras is { } extras)
        {
            MessageHeaders.Scan(extras, _idHeader, [], monitor.EndStatuses, out _, out ends);
        }

        lock (_lock)
        {
            _active.TryGetValue(serial, out var response);
            if (m.Action == MessageAction.Append)
            {
                response ??= Begin(serial, perResponse: true, TakeCreate(serial), now);
                Token(response, now);
            }

            if (ends && response is not null) End(response, "stop", now);
        }
    }

    private Response Begin(string id, bool perResponse, long? startTicks, long now)
    {
        if (_active.Count >= metrics.Options.MaxResponsesPerChannel)
        {
            Response? oldest = null;
            foreach (var r in _active.Values)
            {
                if (oldest is null || r.LastTicks < oldest.LastTicks) oldest = r;
            }

            End(oldest!, "unfinished", now);
        }

        var response = new Response(id, perResponse, startTicks ?? now, hasStart: startTicks is not null);
        response.LastTicks = now;
        _active.Add(id, response);
        if (_active.Count == 1) monitor.Track(this);
        return response;
    }

    private void Token(Response response, long now)
    {
        var tags = response.PerResponse ? _series.PerResponse : _series.PerToken;
        if (response.Tokens == 0)
        {
            response.FirstTokenTicks = now;
            if (response.HasStart)
            {
                var ttft = Stopwatch.GetElapsedTime(response.StartTicks, now).TotalSeconds;
                metrics.TimeToFirstToken.Record(ttft, tags);
                monitor.TimeToFirstToken.Add(ttft);
            }
        }

        // The gap before this token: from the previous token, or for the first one from the start (none without a start).
        if (response.Tokens > 0 || response.HasStart)
        {
            var gap = Stopwatch.GetElapsedTime(response.LastTicks, now).TotalSeconds;
            metrics.InterTokenGap.Record(gap, tags);
            monitor.InterTokenGap.Add(gap);
        }

        response.Tokens++;
        response.LastTicks = now;
    }

    private void End(Response response, string outcome, long now)
    {
        _active.Remove(response.Id);
        var tags = response.PerResponse ? _series.PerResponse : _series.PerToken;
        metrics.ResponseDuration.Record(Stopwatch.GetElapsedTime(response.StartTicks, outcome == "unfinished" ? response.LastTicks : now).TotalSeconds, tags);
        metrics.ResponseTokens.Record(response.Tokens, tags);
        metrics.ResponsesEnded.Add(1, _series.Ended(response.PerResponse, outcome));
        if (_active.Count == 0) monitor.Untrack(this);
    }

    private void RememberCreate(string? serial, long now)
    {
        if (serial is null) return;
        _creates ??= new (string?, long)[RecentCreates];
        _creates[_nextCreate] = (serial, now);
        _nextCreate = (_nextCreate + 1) % RecentCreates;
    }

    private long? TakeCreate(string serial)
    {
        if (_creates is null) return null;
        for (var i = 0; i < _creates.Length; i++)
        {
            if (_creates[i].Serial == serial)
            {
                var ticks = _creates[i].Ticks;
                _creates[i] = default;
                return ticks;
            }
        }

        return null;
    }

    /// <summary>Ends responses idle since before <paramref name="idleSince"/>; true when some are still in progress.</summary>
    public bool Sweep(long idleSince, long now)
    {
        lock (_lock)
        {
            List<Response>? idle = null;
            foreach (var r in _active.Values)
            {
                if (r.LastTicks < idleSince) (idle ??= []).Add(r);
            }

            foreach (var r in idle ?? []) End(r, "unfinished", now);
            return _active.Count > 0;
        }
    }

    /// <summary>The responses in progress, for the admin page.</summary>
    public void Snapshot(List<ResponseView> into, long now)
    {
        lock (_lock)
        {
            foreach (var r in _active.Values)
            {
                var age = Stopwatch.GetElapsedTime(r.StartTicks, now).TotalSeconds;
                var streaming = r.Tokens > 1 ? Stopwatch.GetElapsedTime(r.FirstTokenTicks, r.LastTicks).TotalSeconds : 0;
                into.Add(new ResponseView(Channel, r.Id, r.PerResponse ? "per_response" : "per_token", r.Tokens, Math.Round(age, 3),
                    streaming > 0 ? Math.Round((r.Tokens - 1) / streaming, 1) : 0, Math.Round(Stopwatch.GetElapsedTime(r.LastTicks, now).TotalSeconds, 3)));
            }
        }
    }

    private sealed class Response(string id, bool perResponse, long startTicks, bool hasStart)
    {
        public string Id { get; } = id;

        public bool PerResponse { get; } = perResponse;

        public long StartTicks { get; } = startTicks;

        public bool HasStart { get; } = hasStart;

        public long FirstTokenTicks { get; set; }

        public long LastTicks { get; set; }

        public int Tokens { get; set; }
    }
}

/// <summary>A response in progress as the admin page lists it.</summary>
/// <param name="Channel">Its channel.</param>
/// <param name="Id">Its response id (message-per-token) or serial (message-per-response).</param>
/// <param name="Pattern"><c>per_token</c> or <c>per_response</c>.</param>
/// <param name="Tokens">Tokens so far.</param>
/// <param name="AgeSeconds">Time since it started.</param>
/// <param name="TokensPerSecond">Token rate between its first and latest token.</param>
/// <param name="IdleSeconds">Time since its latest message.</param>
internal sealed record ResponseView(string Channel, string Id, string Pattern, int Tokens, double AgeSeconds, double TokensPerSecond, double IdleSeconds);
