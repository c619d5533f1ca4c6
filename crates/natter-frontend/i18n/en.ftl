# Natter's web UI in English. Every string the pages and the script show comes from
# here (ru.ftl has the same ids); `cargo test -p natter-frontend` checks both catalogs
# have every message and that each one formats.

## The frame: header, sidebar

skip = Skip to content
brand = Natter
conn-connecting = connecting…
conn-reconnecting = offline, reconnecting…
conn-live = connected
nav-rooms-drawer = Rooms
nav-login = Log in
nav-register = Register
nav-logout = Log out
nav-enable-notifications = Enable notifications
nav-account = Account
theme-label = Colour scheme: { $theme ->
    [dark] dark
    [light] light
   *[system] system
  }
lang-label = Language
side-label = Your rooms
side-find-rooms = Find rooms
side-find-people = Find people
side-rooms = Rooms
side-new-room = New room
side-directs = Direct messages
side-threads = Threads
side-browse = Browse public rooms
side-people = People
badge-unread = unread messages
badge-mentions = mentions of you
badge-thread-unread = unread replies
replies = { $n ->
    [one] { $n } reply
   *[other] { $n } replies
  }

## Home

home-title = Home
home-hello = Hello, { $name }
home-pick = Pick a room or a direct chat on the left, or start something new.
home-new-room = New room
home-find-people = Find people
home-keyboard = Keyboard
key-next-unread = next room with unread messages
key-previous-unread = previous room with unread messages
key-latest = jump to the latest message
key-escape = close the thread, the drawer or an edit
home-about = Real-time chat: public rooms, private groups and direct messages, delivered the moment they are sent.
home-create-account = Create an account

## Signing in

login-title = Log in
login-name = User name or email
login-password = Password
login-submit = Log in
login-no-account = No account?
login-wrong = Wrong user name or password.
login-too-many = Too many attempts: wait a minute and try again.
register-title = Create an account
register-tab = Register
register-name = User name
register-password = Password (at least 8 characters)
register-submit = Register

## Rooms

rooms-title = Rooms
rooms-heading = Public rooms
rooms-search = Search rooms
rooms-search-submit = Search
rooms-none = No rooms found.
rooms-more = More rooms
new-room-title = New room
new-room-name = Name
new-room-who = Who can join
new-room-public = Public: anyone can find and join it
new-room-group = Group: members you add
new-room-create = Create
room-direct-with = Direct chat with { $name }
room-direct = Direct chat
room-unnamed = (unnamed)
room-a-room = a room
kind-public = public
kind-group = group
kind-direct = direct
role-owner = owner
role-admin = admin
role-member = member

## A room

room-state-connecting = connecting…
room-state-reconnecting = reconnecting…
room-state-live = live
room-state-deleted = room deleted
room-state-removed = no longer a member
room-notify = Notify me of
level-all = every message
level-mentions = mentions
level-nothing = nothing (muted)
room-members = Members
room-people = People
room-online = Online:
room-online-count = { $n ->
    [one] { $n } person
   *[other] { $n } people
  }
room-pinned = Pinned messages
room-messages-in = Messages in { $room }
room-messages = Messages
room-latest = ↓ Latest
room-new-count = ↓ { $n } new
room-new-messages = New messages
room-message-label = Message
room-message-placeholder = Message (Enter to send, Shift+Enter for a new line)
room-send = Send
room-cancel-reply = cancel the reply
room-replying-to = Replying to { $who }
room-mention-list = people to mention
room-join = Join this room
room-typing = { $n ->
    [one] { $names } is typing…
   *[other] { $names } are typing…
  }
room-typing-many = Several people are typing…
room-seen-by = Seen by
thread-title = Thread
thread-close = close the thread
thread-messages = Thread messages
thread-reply-placeholder = Reply in the thread
thread-reply = Reply
thread-also = also send to the room
thread-summary = 💬 { $replies } · { $who } · last { $when }
thread-in = ↪ in a thread
message-someone = someone
message-edited = (edited)
message-earlier = show earlier versions
message-earlier-list = earlier versions
message-deleted = (deleted)
message-earlier-message = an earlier message
message-deleted-message = a deleted message
tool-reply = reply
tool-react = add a reaction
tool-react-with = react with { $emoji }
tool-thread = thread
tool-pin = pin
tool-unpin = unpin
tool-edit = edit
tool-delete = delete
edit-label = Edit the message
edit-save = Save
edit-cancel = Cancel
delete-done = Message deleted.
delete-undo = Undo
day-today = Today
day-yesterday = Yesterday

## Members, people, profiles

members-title = Members of { $room }
members-remove = Remove
members-make-member = Make member
members-make-admin = Make admin
members-add = Add someone
members-user-name = User name
members-as-admin = as admin
members-add-submit = Add
members-no-user = No user is called { $name }.
members-this-room = This room
members-room-name = Room name
members-rename = Rename
members-delete-confirm = delete the room and all its messages for everyone
members-delete = Delete room
members-delete-unticked = Tick the box to confirm the deletion.
members-leave = Leave room
users-title = People
users-search = User name starts with…
users-find = Find
profile-since = Member since
profile-edit = Edit my profile
profile-direct = Send a direct message
my-profile-title = My profile
my-profile-display-name = Display name
my-profile-about = About me
my-profile-receipts = Show others how far I have read ("seen by"); without it I do not see theirs
my-profile-digests = Email me about unread mentions and direct messages while I am away (when this server sends email)
my-profile-save = Save
my-profile-public = See my public profile

## Email, errors

digests-title = Email digests
digests-off = Email digests are off for { $name }. You can turn them on again on your profile page.
digests-ask = Stop the emails about unread mentions and direct messages?
digests-stop = Stop these emails
digests-unknown-title = Unknown link
digests-unknown = This unsubscribe link is not known (it may be from another server).
back-home = Back to Natter
error-form-title = Form refused
error-form = This form was not sent from a current Natter page. Reload the page and try again.
error-not-found = Not found
error-forbidden = Not allowed
error-bad-request = That did not work
error-slow-down = Slow down
error-log-in = Please log in again
error-unavailable = Natter is briefly unavailable
error-trouble = Natter is having trouble
error-retry = Please try again in a moment.

## Notifications

notify-in = { $sender } in { $room }
notify-mentioned = { $where } mentioned you
