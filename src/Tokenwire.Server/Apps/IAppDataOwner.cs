namespace Tokenwire.Server.Apps;

/// <summary>
/// A store that keeps data per app (push devices and subscriptions): told when an app is deleted (the sandbox's
/// <c>DELETE /apps/{id}</c>) so the app leaves nothing behind. Registered by each feature, so the app API needs to know
/// none of them.
/// </summary>
internal interface IAppDataOwner
{
    Task RemoveAppAsync(string appId, CancellationToken cancellationToken = default);
}
