"""Settings: defaults, layering, and a clear message naming each bad value."""

import pytest

from dispatch.core.settings import SettingsError, load_settings, parse_mqtt_url


def test_defaults_are_embedded():
    s = load_settings(environ={})
    assert s.database_url.startswith("sqlite:///") and s.database_url.endswith("rescuehub.sqlite")
    assert s.mqtt.managed is True
    assert s.mqtt_endpoint.port == 18830  # not 1883, which a system broker often holds
    assert s.web.host == "127.0.0.1" and s.web.port == 5000


def test_layers_file_then_environment(tmp_path):
    conf = tmp_path / "hub.toml"
    conf.write_text('[web]\nport = 6000\nthreads = 8\n[data]\ndir = "/srv/hub"\n')
    s = load_settings(environ={"RESCUEHUB_CONFIG": str(conf), "RESCUEHUB_WEB_PORT": "7000"})
    assert s.web.port == 7000  # environment beats the file
    assert s.web.threads == 8
    assert str(s.data_dir) == "/srv/hub"
    assert s.database_url == "sqlite:////srv/hub/rescuehub.sqlite"


def test_environment_variable_names_follow_section_key():
    s = load_settings(environ={"RESCUEHUB_MQTT_URL": "mqtt://10.0.0.5:1884",
                               "RESCUEHUB_MQTT_MANAGED": "false",
                               "RESCUEHUB_DATABASE_URL": "postgresql+psycopg://u@h/db",
                               "RESCUEHUB_INGEST_MAX_PAYLOAD_BYTES": "1024"})
    assert s.mqtt_endpoint.host == "10.0.0.5" and s.mqtt_endpoint.port == 1884
    assert s.mqtt.managed is False
    assert s.database_url == "postgresql+psycopg://u@h/db"
    assert s.ingest.max_payload_bytes == 1024


@pytest.mark.parametrize(("env", "named"), [
    ({"RESCUEHUB_WEB_PORT": "http"}, "web.port"),
    ({"RESCUEHUB_WEB_PORT": "70000"}, "web.port"),
    ({"RESCUEHUB_WEB_THREADS": "0"}, "web.threads"),
    ({"RESCUEHUB_MQTT_MANAGED": "maybe"}, "mqtt.managed"),
    ({"RESCUEHUB_MQTT_URL": "http://x:1"}, "mqtt.url"),
    ({"RESCUEHUB_MQTT_URL": "mqtt://host:99999"}, "mqtt.url"),
    ({"RESCUEHUB_DATABASE_URL": "mysql://x/y"}, "database.url"),
    ({"RESCUEHUB_REALTIME_MESSAGE_QUEUE": "amqp://x"}, "realtime.message_queue"),
    ({"RESCUEHUB_LOG_LEVEL": "LOUD"}, "log.level"),
    ({"RESCUEHUB_INGEST_MAX_FUTURE_S": "-1"}, "ingest.max_future_s"),
    ({"RESCUEHUB_WEB_DEFAULT_LOCALE": "fr"}, "web.default_locale"),
    ({"RESCUEHUB_MQTT_PROTOCOL": "3"}, "mqtt.protocol"),
    ({"RESCUEHUB_DATABASE_BUSY_TIMEOUT_S": "0"}, "database.busy_timeout_s"),
    ({"RESCUEHUB_WEB_PROT": "5000"}, "RESCUEHUB_WEB_PROT"),
    ({"RESCUEHUB_DEPOT_TIMEZONE": "Mars/Olympus_Mons"}, "depot.timezone"),
    ({"RESCUEHUB_ROSTER_TIMEZONE": "+08:00"}, "roster.timezone"),
    ({"RESCUEHUB_EVACUATION_TIMEZONE": "../etc/passwd"}, "evacuation.timezone"),
])
def test_bad_value_is_named(env, named):
    # The packages' own settings checks join the kernel's when they are imported.
    import depot  # noqa: F401
    import dispatch.evacuation  # noqa: F401
    import dispatch.roster  # noqa: F401

    with pytest.raises(SettingsError, match=named.replace(".", r"\.")):
        load_settings(environ=env)


def test_bad_file(tmp_path):
    conf = tmp_path / "bad.toml"
    conf.write_text("[web\nport = 1")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings(environ={"RESCUEHUB_CONFIG": str(conf)})
    conf.write_text("[nonsense]\nx = 1\n")
    with pytest.raises(SettingsError, match=r"\[nonsense\]"):
        load_settings(environ={"RESCUEHUB_CONFIG": str(conf)})
    conf.write_text('[web]\nport = "http"\n')
    with pytest.raises(SettingsError, match="web.port must be a whole number"):
        load_settings(environ={"RESCUEHUB_CONFIG": str(conf)})
    with pytest.raises(SettingsError, match="not found"):
        load_settings(environ={"RESCUEHUB_CONFIG": str(tmp_path / "missing.toml")})
    conf.write_text("[mqtt]\nmanaged = 1\n")
    with pytest.raises(SettingsError, match="mqtt.managed must be true or false"):
        load_settings(environ={"RESCUEHUB_CONFIG": str(conf)})


def test_mqtt_url_parsing():
    assert parse_mqtt_url("mqtts://broker.example").port == 8883
    assert parse_mqtt_url("mqtt://broker.example").port == 1883


def test_passwords_are_hashed_strongly_by_default():
    assert load_settings(environ={}).web.password_hash == "scrypt:32768:8:1"


@pytest.mark.parametrize("method", ["pbkdf2:sha256:1", "pbkdf2:sha512:1000", "scrypt:1024:8:1",
                                    "scrypt:32768:1:1"])
def test_a_weak_password_hash_only_with_the_test_switch(method, tmp_path):
    conf = tmp_path / "hub.toml"
    conf.write_text(f'[web]\npassword_hash = "{method}"\n')
    for environ in ({"RESCUEHUB_WEB_PASSWORD_HASH": method},
                    {"RESCUEHUB_CONFIG": str(conf)},
                    {"RESCUEHUB_WEB_PASSWORD_HASH": method, "RESCUEHUB_TESTING": "true"}):
        with pytest.raises(SettingsError, match=r"web\.password_hash .* too weak"):
            load_settings(environ=environ)
    with pytest.raises(SettingsError, match="too weak"):
        load_settings({"web": {"password_hash": method}}, environ={})
    testing = load_settings(environ={"RESCUEHUB_WEB_PASSWORD_HASH": method,
                                     "RESCUEHUB_TESTING": "1"})
    assert testing.web.password_hash == method


@pytest.mark.parametrize("method", ["scrypt", "pbkdf2:sha256:600000", "pbkdf2:sha512:210000",
                                    "scrypt:131072:8:1"])
def test_strong_password_hashes_are_taken(method):
    assert load_settings(environ={"RESCUEHUB_WEB_PASSWORD_HASH": method}).web.password_hash \
        == method


@pytest.mark.parametrize("method", ["md5", "pbkdf2:sha1:2000000", "pbkdf2:sha256",
                                    "scrypt:30000:8:1", "scrypt:a:b:c", "argon2"])
def test_unknown_password_hash_methods_are_refused_even_in_tests(method):
    with pytest.raises(SettingsError, match=r"web\.password_hash must be"):
        load_settings(environ={"RESCUEHUB_WEB_PASSWORD_HASH": method, "RESCUEHUB_TESTING": "1"})
