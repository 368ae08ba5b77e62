using System.Diagnostics;
using System.Globalization;

namespace Tokenwire.LoadGen;

/// <summary>perf record of the server during the measurement, when perf is there.</summary>
internal static class Perf
{
    public static Process? Start(int pid, string output)
    {
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(output)!);
            var psi = new ProcessStartInfo("perf") { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
            foreach (var a in new[] { "record", "-F", "499", "-g", "-p", pid.ToString(CultureInfo.InvariantCulture), "-o", output }) psi.ArgumentList.Add(a);
            return Process.Start(psi);
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null;
        }
    }

    public static async Task StopAsync(Process perf)
    {
        using (var kill = Process.Start("kill", ["-INT", perf.Id.ToString(CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync();
        }

        await perf.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        perf.Dispose();
    }
}
