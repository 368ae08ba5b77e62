using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Tokenwire.Server.Hosting;

/// <summary>
/// The certificate for <c>serve --https</c>: the configured one (<c>Tokenwire:Https:CertificatePath</c>, PFX or PEM),
/// or a self-signed one for localhost/127.0.0.1 that is generated once and kept in the data folder.
/// Clients must trust the self-signed certificate explicitly (e.g. <c>NODE_EXTRA_CA_CERTS=data/tokenwire-dev-cert.pem</c>).
/// </summary>
public static class DevelopmentCertificate
{
    /// <summary>File name of the generated certificate (PFX, no password) in the data folder.</summary>
    public const string PfxFileName = "tokenwire-dev-cert.pfx";

    /// <summary>File name of its public certificate (PEM), for clients to trust.</summary>
    public const string PemFileName = "tokenwire-dev-cert.pem";

    /// <summary>Loads the configured certificate, or loads/creates the development one in <paramref name="dataPath"/>.</summary>
    public static X509Certificate2 LoadOrCreate(HttpsOptions https, string dataPath)
    {
        ArgumentNullException.ThrowIfNull(https);
        if (!string.IsNullOrEmpty(https.CertificatePath))
        {
            return https.CertificatePath.EndsWith(".pem", StringComparison.OrdinalIgnoreCase)
                ? X509Certificate2.CreateFromPemFile(https.CertificatePath, https.KeyPath)
                : X509CertificateLoader.LoadPkcs12FromFile(https.CertificatePath, https.CertificatePassword);
        }

        var pfx = Path.Combine(dataPath, PfxFileName);
        if (File.Exists(pfx))
        {
            var existing = X509CertificateLoader.LoadPkcs12FromFile(pfx, password: null);
            if (existing.NotAfter > DateTime.Now.AddDays(1)) return existing;
            existing.Dispose();
        }

        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=Tokenwire development", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName("localhost");
        names.AddIpAddress(IPAddress.Loopback);
        names.AddIpAddress(IPAddress.IPv6Loopback);
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: false, hasPathLengthConstraint: false, 0, critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], critical: false)); // server auth
        using var created = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddYears(1));
        Directory.CreateDirectory(dataPath);
        File.WriteAllBytes(pfx, created.Export(X509ContentType.Pkcs12));
        File.WriteAllText(Path.Combine(dataPath, PemFileName), created.ExportCertificatePem() + "\n");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(pfx, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return X509CertificateLoader.LoadPkcs12FromFile(pfx, password: null);
    }
}

/// <summary>HTTPS settings (<c>Tokenwire:Https</c>).</summary>
public sealed class HttpsOptions
{
    /// <summary>The configuration section.</summary>
    public const string SectionName = "Tokenwire:Https";

    /// <summary>Serve HTTPS/WSS instead of HTTP/WS (<c>serve --https</c>). Default: false.</summary>
    public bool Enabled { get; set; }

    /// <summary>Certificate file (.pfx, or .pem with <see cref="KeyPath"/>). Default: a generated self-signed certificate.</summary>
    public string? CertificatePath { get; set; }

    /// <summary>Private key file for a PEM certificate.</summary>
    public string? KeyPath { get; set; }

    /// <summary>Password of a PFX certificate.</summary>
    public string? CertificatePassword { get; set; }
}
