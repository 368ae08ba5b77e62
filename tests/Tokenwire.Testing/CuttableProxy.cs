using System.Net;
using System.Net.Sockets;

namespace Tokenwire.Testing;

/// <summary>
/// A loopback TCP proxy in front of the server whose connections can all be cut at once (<see cref="CutAll"/>
/// resets both sides), to test resume the way a network failure looks to the client.
/// </summary>
public sealed class CuttableProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private int _targetPort;
    private readonly CancellationTokenSource _stop = new();
    private readonly Lock _lock = new();
    private readonly List<(TcpClient Client, TcpClient Server)> _pairs = [];
    private readonly Task _accepting;
    private int _accepted;
    private int _cuts;
    private volatile bool _stalled;

    public CuttableProxy(int targetPort)
    {
        _targetPort = targetPort;
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _accepting = AcceptLoopAsync();
    }

    public int Port { get; }

    /// <summary>Where new connections go; change it to move clients to another server at the next cut.</summary>
    public int TargetPort
    {
        get => Volatile.Read(ref _targetPort);
        set => Volatile.Write(ref _targetPort, value);
    }

    public int Accepted => Volatile.Read(ref _accepted);

    /// <summary>
    /// While true the proxy forwards nothing and refuses new connections (accepts, then resets them), like a network
    /// that silently stopped delivering: existing sockets stay open, so only idle detection can notice.
    /// </summary>
    public bool Stalled
    {
        get => _stalled;
        set => _stalled = value;
    }

    public int Cuts => Volatile.Read(ref _cuts);

    /// <summary>Aborts every current connection (RST on both sides). New connections are accepted as before.</summary>
    public int CutAll()
    {
        List<(TcpClient Client, TcpClient Server)> pairs;
        lock (_lock)
        {
            pairs = [.. _pairs];
            _pairs.Clear();
        }

        foreach (var (client, server) in pairs)
        {
            Abort(client);
            Abort(server);
        }

        Interlocked.Increment(ref _cuts);
        return pairs.Count;
    }

    private static void Abort(TcpClient tcp)
    {
        try
        {
            tcp.Client.LingerState = new LingerOption(true, 0); // RST, like a dead network path
            tcp.Client.Close();
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
    }

    private async Task AcceptLoopAsync()
    {
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                var client = await _listener.AcceptTcpClientAsync(_stop.Token);
                Interlocked.Increment(ref _accepted);
                if (_stalled)
                {
                    Abort(client);
                    continue;
                }

                _ = HandleAsync(client);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
    }

    private async Task HandleAsync(TcpClient client)
    {
        var server = new TcpClient();
        try
        {
            client.NoDelay = true;
            server.NoDelay = true;
            await server.ConnectAsync(IPAddress.Loopback, TargetPort, _stop.Token);
            lock (_lock) _pairs.Add((client, server));
            var a = PumpAsync(client, server);
            var b = PumpAsync(server, client);
            await Task.WhenAny(a, b);
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException or IOException)
        {
        }
        finally
        {
            lock (_lock) _pairs.Remove((client, server));
            Abort(client);
            Abort(server);
        }
    }

    private async Task PumpAsync(TcpClient from, TcpClient to)
    {
        var buffer = new byte[64 * 1024];
        try
        {
            var input = from.GetStream();
            var output = to.GetStream();
            int read;
            while ((read = await input.ReadAsync(buffer, _stop.Token)) > 0)
            {
                if (!_stalled) await output.WriteAsync(buffer.AsMemory(0, read), _stop.Token);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException or IOException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        CutAll();
        await _accepting;
        _stop.Dispose();
    }
}
