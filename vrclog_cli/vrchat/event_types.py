"""The built-in parser's event types: what ``vrclog types`` lists and ``--fail-on`` takes.

Apart from the parser (its patterns are compiled at import): listing the types, or
checking a type name, needs none of it.
"""

from __future__ import annotations

from ..records import record


@record(frozen=True)
class EventType:
    """One event type as `vrclog types` and the README show it."""

    name: str
    summary: str
    fields: tuple[str, ...]
    example: str


_P = "2025.06.17 18:28:11 Debug      -  "
#: Every event type the built-in parser gives, with its fields and a line that gives it.
BUILTIN_TYPES: tuple[EventType, ...] = (
    EventType("world_join", "you entered a world (two lines: its instance, then its name)",
              ("world_name", "world_id", "instance_id", "data.instance_type", "data.region", "data.owner_id"),
              _P + "[Behaviour] Joining wrld_4432ea9b-729c-46e3-8eaf-846aa0a37fdd:12345~private("
                   "usr_c1644b5b-3ca4-45b4-97c6-a2a0de70d469)~canRequestInvite~region(jp)~nonce(5f1c)"),
    EventType("world_leave", "you left the world", (), _P + "[Behaviour] OnLeftRoom"),
    EventType("player_join", "a player joined your instance", ("player_name", "player_id"),
              _P + "[Behaviour] OnPlayerJoined Night Owl (usr_8f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b)"),
    EventType("player_left", "a player left your instance", ("player_name", "player_id"),
              _P + "[Behaviour] OnPlayerLeft Night Owl (usr_8f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b)"),
    EventType("avatar_change", "a player switched avatar", ("player_name", "data.avatar_name"),
              _P + "[Behaviour] Switching Night Owl to avatar Robot Fox"),
    EventType("video_play", "a video player started a URL", ("data.url", "data.requested_by"),
              _P + "[USharpVideo] Started video load for URL: https://youtu.be/dQw4w9WgXcQ, "
                   "requested by Night Owl"),
    EventType("video_error", "a video player failed", ("data.message",),
              _P + "[Video Playback] ERROR: Video unavailable"),
    EventType("screenshot", "you took a screenshot", ("data.path",),
              _P + "[VRC Camera] Took screenshot to: C:\\Users\\me\\Pictures\\VRChat\\2025-06\\"
                   "VRChat_2025-06-17_18-28-11.123_1920x1080.png"),
    EventType("notification", "a notification reached you (invites name their world)",
              ("player_name", "player_id", "world_id", "world_name", "instance_id",
               "data.notification_type", "data.id"),
              _P + "[API] Received Notification: <Notification from username:Night Owl, sender user "
                   "id:usr_8f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b to usr_c1644b5b-3ca4-45b4-97c6-a2a0de70d469 "
                   "of type: invite, id: not_0b1c2d3e-4f5a-6b7c-8d9e-0f1a2b3c4d5e, created at: 06/17/2025 "
                   "18:28:11 UTC, details: {{worldId=wrld_4432ea9b-729c-46e3-8eaf-846aa0a37fdd:12345~"
                   "region(jp), worldName=The Great Pug}}, type:invite, m seen:False, message: \"\">"),
    EventType("sticker_spawn", "a player placed a sticker", ("player_name", "player_id", "data.sticker_id"),
              _P + "[StickersManager] User usr_8f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b (Night Owl) spawned "
                   "sticker inv_5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9"),
    EventType("portal_spawn", "a portal was dropped", ("data.object",),
              _P + "[Behaviour] Instantiated a (Clone [800004] Portals/PortalInternalDynamic)"),
    EventType("vote_kick", "a vote to kick a player began", ("player_name",),
              _P + "[ModerationManager] A vote kick has been initiated against Night Owl, do you agree?"),
    EventType("kicked", "you were kicked from the instance", ("data.message",),
              _P + "[Behaviour] Received executive message: You have been kicked from the instance by "
                   "majority vote"),
    EventType("join_failed", "joining an instance failed", ("world_id", "instance_id", "data.reason"),
              _P + "[Behaviour] Failed to join instance 'wrld_4432ea9b-729c-46e3-8eaf-846aa0a37fdd:"
                   "12345~region(jp)' due to 'That instance is full'"),
    EventType("instance_reset", "the instance will close for its age", ("data.minutes",),
              _P + "[ModerationManager] This instance will be reset in 60 minutes due to its age."),
    EventType("app_quit", "VRChat closed", ("data.at",),
              _P + "VRCApplication: OnApplicationQuit at 3601.52"),
    EventType("user_authenticated", "you logged in (once a session: who 'you' are)",
              ("player_name", "player_id"),
              _P + "User Authenticated: Paper Crane (usr_0d9e8f7a-6b5c-4d3e-2f1a-0b9c8d7e6f5a)"),
    EventType("vr_mode", "VRChat started in VR or on desktop", ("data.mode", "data.hmd"),
              _P + "STEAMVR HMD Model: Index"),
    EventType("video_resolved", "a video URL was resolved to the address played",
              ("data.url", "data.resolved_url"),
              _P + "[Video Playback] URL 'https://youtu.be/dQw4w9WgXcQ' resolved to "
                   "'https://rr1---sn-example.googlevideo.com/videoplayback?id=1'"),
    EventType("video_sync", "a USharpVideo player synced its position", ("data.position",),
              _P + "[USharpVideo] Syncing video to 12.48"),
    EventType("download", "a world loaded a string or an image from a URL", ("data.kind", "data.url"),
              _P + "[String Download] Attempting to load String from URL 'https://example.org/board.txt'"),
    EventType("api_request", "VRChat asked its API for something",
              ("data.method", "data.url", "data.request_id"),
              _P + "[API] [42] Sending Get request to https://api.vrchat.cloud/api/1/worlds/"
                   "wrld_4432ea9b-729c-46e3-8eaf-846aa0a37fdd"),
    EventType("instance_closed", "the instance you are in was closed", ("data.message",),
              _P + "[Always] Instance closed: The instance owner closed this instance"),
    EventType("vote_kick_succeeded", "a vote to kick a player passed", ("player_name",),
              _P + "[ModerationManager] Vote to kick Night Owl succeeded"),
    EventType("executive_message", "a moderation message that is not a kick", ("data.message",),
              _P + "[Behaviour] Received executive message: You have been warned by a moderator"),
    EventType("join_blocked", "the instance master sent nothing: VRChat moved you on", ("data.message",),
              _P + "[Behaviour] Master is not sending any events! Moving to a new instance."),
    EventType("udon_exception", "a world's Udon script failed and was halted", ("data.message",),
              _P + "[UdonBehaviour] An exception occurred during Udon execution, this UdonBehaviour "
                   "will be halted."),
    EventType("audio_device_changed", "the computer's audio devices changed", ("data.detail",),
              _P + "[Always] uSpeak: OnAudioConfigurationChanged - devicesChanged = True, resetting mic.."),
    EventType("microphone_set", "VRChat chose a microphone", ("data.device", "data.index"),
              _P + "[Always] uSpeak: SetInputDevice 0 (2 total) 'Headset Microphone (Loop Audio)'"),
    EventType("osc_failed", "VRChat could not start its OSC server", ("data.reason",),
              _P + "Could not Start OSC: Address already in use"),
    EventType("avatar_pedestal", "a player switched avatar at an avatar pedestal", ("player_name",),
              _P + "[Network Processing] RPC invoked SwitchAvatar on AvatarPedestal for Night Owl"),
)
#: Every event type the built-in parser gives.
EVENT_TYPES = tuple(t.name for t in BUILTIN_TYPES)
