using System.Security.Cryptography;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Tokenwire.AI;
using Tokenwire.AI.Chat;
using Tokenwire.Client;
using Tokenwire.Protocol;
using Tokenwire.Server.Auth;

namespace Tokenwire.Demo;

/// <summary>
/// The demo's agent, in the server process: answers each prompt with the configured model and publishes the answer on
/// the demo channel, one message per token, with <see cref="TokenStreamPublisher"/> (start/token/stop, responseId in
/// <c>extras.headers</c>), or with the message-per-response pattern on the response channel (one message per answer,
/// each token appended). It is an ordinary realtime client of this very server, connected over loopback with the demo
/// key, so the tokens take exactly the path an external agent's would. Before the answer it publishes the prompt as a
/// <c>prompt</c> message with the same responseId, so every tab (and a reloaded one, through the in-progress endpoint)
/// can show what was asked; message-per-token subscribers ignore names they do not know.
/// </summary>
public sealed class DemoAgent : IAsyncDisposable
{
    /// <summary>Name of the message that carries the prompt of a response.</summary>
    public const string PromptName = "prompt";

    private readonly DemoOptions _options;
    private readonly KeyStore _keys;
    private readonly IServer _server;
    private readonly ILogger<DemoAgent> _logger;
    private readonly IChatClient _model;
    private readonly SemaphoreSlim _slots;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Lock _lock = new();
    private readonly HashSet<Task> _running = [];
    private TokenwireRealtime? _client;

    /// <summary>Creates the agent; it connects on the first prompt (the server's address is known only once it listens).</summary>
    public DemoAgent(IOptions<DemoOptions> options, KeyStore keys, IServer server, ILogger<DemoAgent> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options.Value;
        _keys = keys;
        _server = server;
        _logger = logger;
        _model = CreateModel(_options);
        _slots = new SemaphoreSlim(_options.MaxConcurrentResponses, _options.MaxConcurrentResponses);
    }

    /// <summary>The key the agent publishes with and browser tokens are signed with.</summary>
    public ApiKey Key => (string.IsNullOrEmpty(_options.KeyName) ? _keys.RootKey : _keys.Find(_options.KeyName))
        ?? throw new InvalidOperationException($"Tokenwire:Demo:KeyName names no configured key: {_options.KeyName}");

    /// <summary>
    /// Publishes the prompt, then starts streaming the answer in the background; returns its responseId once the prompt
    /// message is acknowledged. Throws <see cref="AblyException"/> 42910 (status 429) when
    /// <see cref="DemoOptions.MaxConcurrentResponses"/> answers are already streaming.
    /// </summary>
    /// <param name="prompt">The question.</param>
    /// <param name="pattern"><see cref="TokenStreamPattern.StartStop"/> on <see cref="DemoOptions.Channel"/>, or
    /// <see cref="TokenStreamPattern.MessagePerResponse"/> on <see cref="DemoOptions.ResponseChannel"/>.</param>
    /// <param name="cancellationToken">Stops waiting for the prompt's ACK.</param>
    public async Task<string> StartAsync(string prompt, TokenStreamPattern pattern, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        if (!_slots.Wait(0, CancellationToken.None)) throw new AblyException(42910, 429, $"{_options.MaxConcurrentResponses} answers are already streaming; try again when one ends");
        try
        {
            var perResponse = pattern == TokenStreamPattern.MessagePerResponse;
            var channel = Connect().Channels.Get(perResponse ? _options.ResponseChannel : _options.Channel);
            var responseId = "demo-" + RandomNumberGenerator.GetHexString(12, lowercase: true);
            var extras = MessageExtras.WithHeaders([new KeyValuePair<string, string>(TokenStreamNames.Default.ResponseIdHeader, responseId)]);
            await channel.PublishAsync(PromptName, prompt, extras).WaitAsync(TimeSpan.FromSeconds(10), cancellationToken).ConfigureAwait(false);
            Track(Task.Run(() => AnswerAsync(channel, pattern, responseId, prompt), CancellationToken.None));
            return responseId;
        }
        catch
        {
            _slots.Release();
            throw;
        }
    }

    private async Task AnswerAsync(RealtimeChannel channel, TokenStreamPattern pattern, string responseId, string prompt)
    {
        try
        {
            var publisher = new TokenStreamPublisher(channel, new TokenStreamOptions { Pattern = pattern });
            var result = await publisher.StreamAsync(_model, [new ChatMessage(ChatRole.User, prompt)], null, responseId, null, _stopping.Token).ConfigureAwait(false);
            DemoLog.Answered(_logger, responseId, result.TokenCount, result.Failures.Count, result.RecoveryPublished);
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
            // Shutting down: the publisher has already published stop.
        }
        catch (Exception e)
        {
            // A model failure (e.g. an unreachable OpenAI endpoint) ends this answer only.
            DemoLog.AnswerFailed(_logger, e, responseId);
        }
        finally
        {
            _slots.Release();
        }
    }

    private TokenwireRealtime Connect()
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_stopping.IsCancellationRequested, this);
            if (_client is not null) return _client;
            var address = LoopbackAddress(_server.Features.Get<IServerAddressesFeature>()?.Addresses ?? [])
                ?? throw new InvalidOperationException("The server has no listening address yet");
            var key = Key;
            _client = new TokenwireRealtime(new ClientOptions($"{key.KeyName}:{key.Secret}")
            {
                Endpoint = address.Host,
                Port = address.Port,
                Tls = address.Scheme == "https",
                EchoMessages = false,
            });
            return _client;
        }
    }

    /// <summary>Where this process can reach its own server: the first address, with a wildcard host made loopback.</summary>
    internal static Uri? LoopbackAddress(IEnumerable<string> addresses)
    {
        foreach (var address in addresses)
        {
            // Kestrel reports wildcard bindings as http://[::]:8080, http://0.0.0.0:8080, http://+:8080 or http://*:8080.
            var normalised = address.Replace("://+:", "://127.0.0.1:", StringComparison.Ordinal).Replace("://*:", "://127.0.0.1:", StringComparison.Ordinal);
            if (!Uri.TryCreate(normalised, UriKind.Absolute, out var uri)) continue;
            var host = uri.Host switch
            {
                "0.0.0.0" => "127.0.0.1",
                "[::]" => "[::1]",
                var h => h,
            };
            return new UriBuilder(uri) { Host = host }.Uri;
        }

        return null;
    }

    private static IChatClient CreateModel(DemoOptions options) => options.Model switch
    {
        "simulated" => new SimulatedChatClient(new SimulatedChatClientOptions
        {
            TokensPerSecond = options.TokensPerSecond,
            Style = SimulatedTextStyle.Sentences,
            AnswerTokens = options.AnswerTokens,
            Text = string.IsNullOrEmpty(options.Text) ? null : options.Text,
        }),
        "openai" => OpenAIProvider.CreateChatClient(OpenAICompatibleOptions.FromEnvironment() is var env ? env with
        {
            Endpoint = options.OpenAIEndpoint ?? env.Endpoint,
            ApiKey = string.IsNullOrEmpty(options.OpenAIApiKey) ? env.ApiKey : options.OpenAIApiKey,
            Model = string.IsNullOrEmpty(options.OpenAIModel) ? env.Model : options.OpenAIModel,
        } : env),
        var other => throw new InvalidOperationException($"Tokenwire:Demo:Model must be simulated or openai, not '{other}'"),
    };

    private void Track(Task task)
    {
        lock (_lock) _running.Add(task);
        task.ContinueWith(t => { lock (_lock) _running.Remove(t); }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    /// <summary>Stops the answers in flight (each still publishes its <c>stop</c>) and closes the connection.</summary>
    public async ValueTask DisposeAsync()
    {
        Task[] running;
        TokenwireRealtime? client;
        lock (_lock)
        {
            if (_stopping.IsCancellationRequested) return;
            _stopping.Cancel();
            running = [.. _running];
            client = _client;
        }

        await Task.WhenAll(running).WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        if (client is not null) await client.DisposeAsync().ConfigureAwait(false);
        _model.Dispose();
        _stopping.Dispose();
        _slots.Dispose();
    }
}

/// <summary>Log messages of the demo (event ids 9000-9099).</summary>
internal static partial class DemoLog
{
    [LoggerMessage(9000, LogLevel.Information, "Demo answer {ResponseId}: {Tokens} tokens, {Failures} failed publishes, recovery published: {Recovered}")]
    public static partial void Answered(ILogger logger, string responseId, int tokens, int failures, bool recovered);

    [LoggerMessage(9001, LogLevel.Warning, "Demo answer {ResponseId} failed")]
    public static partial void AnswerFailed(ILogger logger, Exception exception, string responseId);

    [LoggerMessage(9002, LogLevel.Warning, "The demo page's ably browser bundle is missing ({Path}): install Node.js 20+ and rebuild (the build runs npm ci in src/Tokenwire.Demo/web)")]
    public static partial void BundleMissing(ILogger logger, string path);
}
