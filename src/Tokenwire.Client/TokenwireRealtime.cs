using Tokenwire.Client.Internal;

namespace Tokenwire.Client;

/// <summary>
/// The realtime client (RTC): one connection to a Tokenwire server and its channels. Thread-safe. Connects on
/// construction unless <see cref="ClientOptions.AutoConnect"/> is false; dispose it to close the connection.
/// </summary>
/// <example>
/// <code>
/// await using var client = new TokenwireRealtime(new ClientOptions(key) { Endpoint = "127.0.0.1", Port = 8080 });
/// var channel = client.Channels.Get("chat");
/// channel.Subscribe(m => Console.WriteLine(m.Data));
/// await channel.PublishAsync("greeting", "hello");
/// </code>
/// </example>
public sealed class TokenwireRealtime : IAsyncDisposable
{
    private readonly ConnectionManager _manager;
    private int _disposed;

    /// <summary>Creates the client; starts connecting unless <see cref="ClientOptions.AutoConnect"/> is false.</summary>
    /// <exception cref="ArgumentException">The options have no credentials or an invalid endpoint.</exception>
    public TokenwireRealtime(ClientOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        options = options.Normalised();
        Options = options;
        Rest = new TokenwireRest(options);
        Connection = new Connection();
        Channels = new RealtimeChannels();
        _manager = new ConnectionManager(options, Connection, Channels, Rest);
        Connection.Manager = _manager;
        Channels.Manager = _manager;
        if (options.AutoConnect) _manager.Loop.Post(_manager.Connect);
    }

    /// <summary>Creates the client with an API key and every other option at its default.</summary>
    public TokenwireRealtime(string key) : this(new ClientOptions(key))
    {
    }

    /// <summary>The options in force.</summary>
    public ClientOptions Options { get; }

    /// <summary>The connection.</summary>
    public Connection Connection { get; }

    /// <summary>The channels (RTS).</summary>
    public RealtimeChannels Channels { get; }

    /// <summary>A REST client with the same options, used for history (RTC5 <c>request</c>/<c>time</c> also go through it).</summary>
    public TokenwireRest Rest { get; }

    /// <summary>Shortcut for <see cref="TokenwireRest.TimeAsync"/>.</summary>
    public Task<DateTimeOffset> TimeAsync(CancellationToken cancellationToken = default) => Rest.TimeAsync(cancellationToken);

    /// <summary>Closes the connection (waiting up to <c>RealtimeRequestTimeout</c> for CLOSED) and stops the client.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        try
        {
            using var timeout = new CancellationTokenSource(Options.RealtimeRequestTimeout + TimeSpan.FromSeconds(1));
            await _manager.CloseAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }

        await _manager.ShutdownAsync().ConfigureAwait(false);
        Rest.Dispose();
    }
}
