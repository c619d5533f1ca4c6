# Интерфейс Natter на русском. Те же идентификаторы, что в en.ftl.

## Рамка: заголовок, боковая панель

skip = Перейти к содержимому
brand = Natter
conn-connecting = подключение…
conn-reconnecting = нет связи, переподключение…
conn-live = подключено
nav-rooms-drawer = Комнаты
nav-login = Войти
nav-register = Регистрация
nav-logout = Выйти
nav-enable-notifications = Включить уведомления
nav-account = Учётная запись
theme-label = Оформление: { $theme ->
    [dark] тёмное
    [light] светлое
   *[system] как в системе
  }
lang-label = Язык
side-label = Ваши комнаты
side-find-rooms = Найти комнату
side-find-people = Найти людей
side-rooms = Комнаты
side-new-room = Новая комната
side-directs = Личные сообщения
side-threads = Обсуждения
side-browse = Открытые комнаты
side-people = Люди
badge-unread = непрочитанные сообщения
badge-mentions = упоминания вас
badge-thread-unread = непрочитанные ответы
replies = { $n ->
    [one] { $n } ответ
    [few] { $n } ответа
   *[many] { $n } ответов
  }

## Главная

home-title = Главная
home-hello = Здравствуйте, { $name }
home-pick = Выберите комнату или личный чат слева или начните новый разговор.
home-new-room = Новая комната
home-find-people = Найти людей
home-keyboard = Клавиатура
key-next-unread = следующая комната с непрочитанными
key-previous-unread = предыдущая комната с непрочитанными
key-latest = к последнему сообщению
key-escape = закрыть обсуждение, панель или правку
home-about = Чат в реальном времени: открытые комнаты, закрытые группы и личные сообщения — доставляются в момент отправки.
home-create-account = Создать учётную запись

## Вход

login-title = Вход
login-name = Имя пользователя или почта
login-password = Пароль
login-submit = Войти
login-no-account = Нет учётной записи?
login-wrong = Неверное имя пользователя или пароль.
login-too-many = Слишком много попыток: подождите минуту и попробуйте снова.
register-title = Регистрация
register-tab = Регистрация
register-name = Имя пользователя
register-password = Пароль (не короче 8 символов)
register-submit = Зарегистрироваться

## Комнаты

rooms-title = Комнаты
rooms-heading = Открытые комнаты
rooms-search = Поиск комнат
rooms-search-submit = Найти
rooms-none = Комнаты не найдены.
rooms-more = Ещё комнаты
new-room-title = Новая комната
new-room-name = Название
new-room-who = Кто может войти
new-room-public = Открытая: любой может найти её и войти
new-room-group = Группа: участники, которых вы добавите
new-room-create = Создать
room-direct-with = Личный чат с { $name }
room-direct = Личный чат
room-unnamed = (без названия)
room-a-room = комната
kind-public = открытая
kind-group = группа
kind-direct = личная
role-owner = владелец
role-admin = администратор
role-member = участник

## Комната

room-state-connecting = подключение…
room-state-reconnecting = переподключение…
room-state-live = на связи
room-state-deleted = комната удалена
room-state-removed = вы больше не участник
room-notify = Уведомлять о
level-all = каждом сообщении
level-mentions = упоминаниях
level-nothing = ничём (без звука)
room-members = Участники
room-people = Люди
room-online = В сети:
room-online-count = { $n ->
    [one] { $n } человек
    [few] { $n } человека
   *[many] { $n } человек
  }
room-pinned = Закреплённые сообщения
room-messages-in = Сообщения в { $room }
room-messages = Сообщения
room-latest = ↓ К последним
room-new-count = ↓ новых: { $n }
room-new-messages = Новые сообщения
room-message-label = Сообщение
room-message-placeholder = Сообщение (Enter — отправить, Shift+Enter — новая строка)
room-send = Отправить
room-cancel-reply = отменить ответ
room-replying-to = Ответ на { $who }
room-mention-list = кого упомянуть
room-join = Войти в комнату
room-typing = { $n ->
    [one] { $names } печатает…
   *[other] { $names } печатают…
  }
room-typing-many = Печатают несколько человек…
room-seen-by = Прочитали:
thread-title = Обсуждение
thread-close = закрыть обсуждение
thread-messages = Сообщения обсуждения
thread-reply-placeholder = Ответить в обсуждении
thread-reply = Ответить
thread-also = отправить и в комнату
thread-summary = 💬 { $replies } · { $who } · последний в { $when }
thread-in = ↪ в обсуждении
message-someone = кто-то
message-edited = (изменено)
message-earlier = показать прежние версии
message-earlier-list = прежние версии
message-deleted = (удалено)
message-earlier-message = более раннее сообщение
message-deleted-message = удалённое сообщение
tool-reply = ответить
tool-react = добавить реакцию
tool-react-with = реакция { $emoji }
tool-thread = обсудить
tool-pin = закрепить
tool-unpin = открепить
tool-edit = изменить
tool-delete = удалить
edit-label = Изменить сообщение
edit-save = Сохранить
edit-cancel = Отмена
delete-done = Сообщение удалено.
delete-undo = Вернуть
day-today = Сегодня
day-yesterday = Вчера

## Участники, люди, профили

members-title = Участники комнаты { $room }
members-remove = Удалить
members-make-member = Сделать участником
members-make-admin = Сделать администратором
members-add = Добавить человека
members-user-name = Имя пользователя
members-as-admin = администратором
members-add-submit = Добавить
members-no-user = Пользователя { $name } нет.
members-this-room = Эта комната
members-room-name = Название комнаты
members-rename = Переименовать
members-delete-confirm = удалить комнату и все её сообщения для всех
members-delete = Удалить комнату
members-delete-unticked = Отметьте флажок, чтобы подтвердить удаление.
members-leave = Покинуть комнату
users-title = Люди
users-search = Имя пользователя начинается с…
users-find = Найти
profile-since = С нами с
profile-edit = Изменить профиль
profile-direct = Написать лично
my-profile-title = Мой профиль
my-profile-display-name = Отображаемое имя
my-profile-about = О себе
my-profile-receipts = Показывать другим, до куда я прочитал(а) («прочитали»); без этого я не вижу их отметок
my-profile-digests = Присылать письма о непрочитанных упоминаниях и личных сообщениях, пока меня нет (если сервер отправляет почту)
my-profile-save = Сохранить
my-profile-public = Мой открытый профиль

## Почта, ошибки

digests-title = Письма-сводки
digests-off = Письма-сводки для { $name } отключены. Включить их снова можно на странице профиля.
digests-ask = Больше не присылать письма о непрочитанных упоминаниях и личных сообщениях?
digests-stop = Не присылать
digests-unknown-title = Неизвестная ссылка
digests-unknown = Эта ссылка для отписки неизвестна (возможно, она с другого сервера).
back-home = Вернуться в Natter
error-form-title = Форма отклонена
error-form = Эта форма отправлена не с актуальной страницы Natter. Обновите страницу и попробуйте снова.
error-not-found = Не найдено
error-forbidden = Нет доступа
error-bad-request = Не получилось
error-slow-down = Не так быстро
error-log-in = Войдите снова
error-unavailable = Natter ненадолго недоступен
error-trouble = У Natter неполадки
error-retry = Попробуйте ещё раз через минуту.

## Уведомления

notify-in = { $sender } в { $room }
notify-mentioned = { $where } упомянул(а) вас
