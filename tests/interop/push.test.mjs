// Push with the real ably-js: the admin API (rest.push.admin: device registrations, channel subscriptions, channels,
// direct publish), channel.push for a clientId, and a device activated with a per-client push config (the plugin shape
// ably/react-native-push produces) that subscribes itself and deregisters. Notifications are delivered through the
// ablyChannel transport, so a realtime subscriber sees each one as an '__ably_push__' message.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import PushPlugin from 'ably/push';
import { FORMATS, TEST_TIMEOUT, uniqueName, useServer, withTimeout } from './support/helpers.mjs';

const ctx = useServer({
  extraArgs: ['--Tokenwire:Namespaces:0:Id=pushenabled', '--Tokenwire:Namespaces:0:PushEnabled=true'],
});

const payload = (title) => ({ notification: { title, body: `body of ${title}` }, data: { foo: 'bar' } });

/** Resolves with the payload of the next push notification on `channelName` (a realtime subscriber). */
async function nextPush(t, format, channelName) {
  const realtime = await ctx.realtime(t, format);
  const channel = realtime.channels.get(channelName);
  let resolve;
  const received = new Promise((r) => (resolve = r));
  await channel.subscribe('__ably_push__', (msg) => resolve(JSON.parse(msg.data)));
  return () => withTimeout(received, 20_000, `a push notification on ${channelName}`);
}

/** A push plugin whose device is simulated: its recipient is an ablyChannel recipient on `channelName`. */
function simulatedDevicePlugin(channelName) {
  const values = new Map();
  return {
    ...PushPlugin,
    pushConfig: {
      platform: 'browser',
      formFactor: 'desktop',
      storage: { get: (k) => values.get(k), set: (k, v) => values.set(k, v), remove: (k) => values.delete(k) },
      getPushDeviceDetails(machine) {
        const device = machine.client.device();
        device.push.recipient = { transportType: 'ablyChannel', channel: channelName };
        device.persist();
        machine.handleEvent(new machine.GotPushDeviceDetails());
      },
    },
  };
}

for (const format of FORMATS) {
  describe(`push [${format}]`, () => {
    test('deviceRegistrations: save, get, list by clientId, remove, removeWhere', { timeout: TEST_TIMEOUT }, async () => {
      const admin = ctx.rest(format).push.admin;
      const clientId = uniqueName('client');
      const devices = [uniqueName('d1'), uniqueName('d2')].map((id) => ({
        id,
        clientId,
        deviceSecret: `secret-${id}`,
        platform: 'android',
        formFactor: 'phone',
        push: { recipient: { transportType: 'fcm', registrationToken: `token-${id}` } },
      }));
      for (const device of devices) {
        const saved = await admin.deviceRegistrations.save(device);
        assert.equal(saved.id, device.id);
        assert.equal(saved.push.state, 'ACTIVE');
      }

      const got = await admin.deviceRegistrations.get(devices[0].id);
      assert.equal(got.clientId, clientId);
      assert.equal(got.push.recipient.registrationToken, `token-${devices[0].id}`);

      const page = await admin.deviceRegistrations.list({ clientId, limit: 1 });
      assert.equal(page.items.length, 1);
      assert.ok(page.hasNext(), 'a second page');
      const second = await page.next();
      assert.deepEqual([page.items[0].id, second.items[0].id].sort(), devices.map((d) => d.id).sort());

      await admin.deviceRegistrations.remove(devices[0].id);
      await assert.rejects(admin.deviceRegistrations.get(devices[0].id), (err) => err.statusCode === 404 && err.code === 40400);
      await admin.deviceRegistrations.removeWhere({ clientId });
      assert.equal((await admin.deviceRegistrations.list({ clientId })).items.length, 0);
      await assert.rejects(
        admin.deviceRegistrations.save({ ...devices[0], platform: 'not_a_real_platform' }),
        (err) => err.statusCode === 400 && err.code === 40000,
      );
    });

    test('channelSubscriptions: save, list, listChannels, remove', { timeout: TEST_TIMEOUT }, async () => {
      const admin = ctx.rest(format).push.admin;
      const channel = uniqueName('pushenabled:news');
      const clientId = uniqueName('client');
      const saved = await admin.channelSubscriptions.save({ channel, clientId });
      assert.deepEqual({ channel: saved.channel, clientId: saved.clientId }, { channel, clientId });

      const listed = await admin.channelSubscriptions.list({ channel });
      assert.deepEqual(listed.items.map((s) => [s.channel, s.clientId]), [[channel, clientId]]);
      const channels = await admin.channelSubscriptions.listChannels({});
      assert.ok(channels.items.includes(channel), `listChannels includes ${channel}: ${channels.items}`);

      await admin.channelSubscriptions.remove({ channel, clientId });
      assert.equal((await admin.channelSubscriptions.list({ channel })).items.length, 0);
      await assert.rejects(admin.channelSubscriptions.save({ channel: uniqueName('not-push-enabled'), clientId }), (err) => err.code === 40000);
    });

    test('admin.publish to an ablyChannel recipient, a device and a clientId', { timeout: TEST_TIMEOUT }, async (t) => {
      const rest = ctx.rest(format);
      const target = uniqueName('push-target');
      const clientId = uniqueName('client');
      const deviceId = uniqueName('device');
      await rest.push.admin.deviceRegistrations.save({
        id: deviceId,
        clientId,
        platform: 'browser',
        formFactor: 'desktop',
        push: { recipient: { transportType: 'ablyChannel', channel: target } },
      });

      for (const [recipient, title] of [
        [{ transportType: 'ablyChannel', channel: target, ablyKey: ctx.server.key }, 'direct'],
        [{ deviceId }, 'by-device'],
        [{ clientId }, 'by-client'],
      ]) {
        const received = await nextPush(t, format, target);
        await rest.push.admin.publish(recipient, payload(title));
        const notification = await received();
        assert.equal(notification.notification.title, title);
        assert.deepEqual(notification.data, { foo: 'bar' });
      }

      await assert.rejects(rest.push.admin.publish({ deviceId: uniqueName('missing') }, payload('x')), (err) => err.statusCode === 404);
    });

    test('channel.push.subscribeClient, listSubscriptions and unsubscribeClient', { timeout: TEST_TIMEOUT }, async () => {
      const clientId = uniqueName('client');
      const rest = ctx.rest(format, { clientId, plugins: { Push: PushPlugin } });
      const channel = rest.channels.get(uniqueName('pushenabled:alerts'));
      await channel.push.subscribeClient();
      const subscriptions = await channel.push.listSubscriptions();
      assert.deepEqual(subscriptions.items.map((s) => [s.channel, s.clientId]), [[channel.name, clientId]]);
      await channel.push.unsubscribeClient();
      assert.equal((await channel.push.listSubscriptions()).items.length, 0);
    });

    test('a device activates, subscribes itself, gets channel pushes, and deactivates', { timeout: TEST_TIMEOUT }, async (t) => {
      const target = uniqueName('push-target');
      const rest = ctx.rest(format, { plugins: { Push: simulatedDevicePlugin(target) } });
      await rest.push.activate();
      const device = rest.device();
      assert.ok(device.deviceIdentityToken, 'activation stores a deviceIdentityToken');

      const channel = rest.channels.get(uniqueName('pushenabled:news'));
      await channel.push.subscribeDevice(); // authenticated as the device with X-Ably-DeviceToken
      const subscriptions = await rest.push.admin.channelSubscriptions.list({ deviceId: device.id });
      assert.deepEqual(subscriptions.items.map((s) => s.channel), [channel.name]);

      const received = await nextPush(t, format, target);
      const publisher = await ctx.realtime(t, format);
      await publisher.channels.get(channel.name).publish({ name: 'update', data: 'x', extras: { push: payload('channel-push') } });
      assert.equal((await received()).notification.title, 'channel-push');

      await channel.push.unsubscribeDevice();
      assert.equal((await rest.push.admin.channelSubscriptions.list({ deviceId: device.id })).items.length, 0);
      const id = device.id;
      await rest.push.deactivate(); // DELETE with the device identity token as the only credentials
      await assert.rejects(rest.push.admin.deviceRegistrations.get(id), (err) => err.statusCode === 404);
    });
  });
}
