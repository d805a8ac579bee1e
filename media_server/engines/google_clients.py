"""One set of Google Cloud clients per process, shared by every session.

Credentials come from a service-account key file (`google_credentials`) or else
Application Default Credentials. `google_endpoint` points all three clients at one
plaintext gRPC endpoint instead (emulators, private gateways, tests): no credentials.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import google.auth
import grpc
from google.api_core.client_options import ClientOptions
from google.auth.credentials import Credentials
from google.auth.exceptions import DefaultCredentialsError, GoogleAuthError
from google.cloud.speech_v2 import SpeechAsyncClient
from google.cloud.speech_v2.services.speech.transports import SpeechGrpcAsyncIOTransport
from google.cloud.texttospeech_v1 import TextToSpeechAsyncClient
from google.cloud.texttospeech_v1.services.text_to_speech.transports import (
    TextToSpeechGrpcAsyncIOTransport,
)
from google.cloud.translate_v3 import TranslationServiceAsyncClient
from google.cloud.translate_v3.services.translation_service.transports import (
    TranslationServiceGrpcAsyncIOTransport,
)
from google.oauth2 import service_account

from media_server.settings import Settings, SettingsError

log = logging.getLogger(__name__)

SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
# A hand-made channel caps messages at 4 MB; synthesised audio can be larger.
_CHANNEL_OPTIONS = [("grpc.max_send_message_length", -1),
                    ("grpc.max_receive_message_length", -1)]


@dataclass(frozen=True)
class GoogleAccess:
    """What the clients authenticate with: credentials, or none for a plaintext endpoint."""

    project: str
    credentials: Credentials | None


def find_credentials(settings: Settings) -> GoogleAccess:
    """Resolve credentials and project before the server starts, or say what is missing."""
    if settings.google_endpoint:
        return GoogleAccess(settings.google_project or "local", None)
    try:
        if settings.google_credentials:
            credentials = service_account.Credentials.from_service_account_file(
                settings.google_credentials, scopes=SCOPES)
            project = credentials.project_id
        else:
            credentials, project = google.auth.default(scopes=SCOPES)
    except (DefaultCredentialsError, GoogleAuthError, OSError, ValueError) as exc:
        raise SettingsError(
            "Google engines are chosen but no Google credentials were found: set "
            "LIVE_INTERPRETER_GOOGLE_CREDENTIALS to a service-account key file, or "
            "GOOGLE_APPLICATION_CREDENTIALS, or run `gcloud auth application-default "
            f"login` ({exc})") from exc
    project = settings.google_project or project or ""
    if not project:
        raise SettingsError("Google engines need a project: set LIVE_INTERPRETER_GOOGLE_PROJECT")
    return GoogleAccess(project, credentials)


@dataclass
class GoogleClients:
    speech: SpeechAsyncClient
    translation: TranslationServiceAsyncClient
    tts: TextToSpeechAsyncClient
    project: str
    location: str

    async def close(self) -> None:
        for client in (self.speech, self.translation, self.tts):
            await client.transport.close()


def create_clients(settings: Settings, access: GoogleAccess) -> GoogleClients:
    """Create the clients; call inside the running event loop (channels bind to it)."""
    location = settings.google_location
    if settings.google_endpoint:
        def channel() -> grpc.aio.Channel:
            return grpc.aio.insecure_channel(settings.google_endpoint, options=_CHANNEL_OPTIONS)

        log.info("Google clients use a plaintext endpoint",
                 extra={"endpoint": settings.google_endpoint})
        return GoogleClients(
            speech=SpeechAsyncClient(transport=SpeechGrpcAsyncIOTransport(channel=channel())),
            translation=TranslationServiceAsyncClient(
                transport=TranslationServiceGrpcAsyncIOTransport(channel=channel())),
            tts=TextToSpeechAsyncClient(
                transport=TextToSpeechGrpcAsyncIOTransport(channel=channel())),
            project=access.project, location=location)
    # Regional Speech recognisers live behind regional endpoints.
    speech_options = None if location == "global" else ClientOptions(
        api_endpoint=f"{location}-speech.googleapis.com")
    return GoogleClients(
        speech=SpeechAsyncClient(credentials=access.credentials, client_options=speech_options),
        translation=TranslationServiceAsyncClient(credentials=access.credentials),
        tts=TextToSpeechAsyncClient(credentials=access.credentials),
        project=access.project, location=location)
