"""The registry service handlers call: endpoints (insecure, mirrors), pull, push, login, search."""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
import logging
import ssl
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

import aiohttp

from servin import errors
from servin.images.events import ImageEvent, ImageEventPublisher, discard
from servin.images.reference import DEFAULT_DOMAIN, Reference
from servin.registry import manifest as mf
from servin.registry import progress
from servin.registry import pull as pull_mod
from servin.registry import push as push_mod
from servin.registry import search as search_mod
from servin.registry.auth import AuthConfig
from servin.registry.client import USER_AGENT, Endpoint, Repository, describe_transport_error
from servin.registry.errors import RegistryError, TransportError, translate_pull
from servin.registry.transfers import TransferLimit

log = logging.getLogger(__name__)
T = TypeVar("T")

DOCKER_HUB_REGISTRY = "https://registry-1.docker.io"
DOCKER_HUB_INDEX = "https://index.docker.io"
DOCKER_HUB_AUTH_ADDRESS = "https://index.docker.io/v1/"
DEFAULT_INSECURE_CIDRS = ("127.0.0.0/8", "::1/128")  # as dockerd: loopback registries speak plain http


@dataclass(frozen=True, slots=True)
class PullResult:
    image_id: str
    digest: str
    downloaded: bool


def normalize_mirror(url: str) -> str:
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = "https://" + url
    if not url.startswith(("http://", "https://")):
        raise errors.InvalidArgument(f"invalid mirror: unsupported scheme in {url}")
    return url


def server_hostname(address: str) -> str:
    """dockerd's ConvertToHostname: ``https://index.docker.io/v1/`` → ``index.docker.io``."""
    s = address.strip()
    for prefix in ("http://", "https://"):
        if s.startswith(prefix):
            s = s[len(prefix):]
    return s.split("/", 1)[0]


def _image_event(action: str, ref: Reference, labels: dict[str, str] | None = None) -> ImageEvent:
    """A pull or push event: the reference the actor, its repository the name."""
    attributes = {**(labels or {}), "name": ref.familiar_name()}
    return ImageEvent(action=action, actor_id=ref.familiar(), attributes=attributes)


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistrySettings:
    insecure_cidrs: tuple[str, ...]
    insecure_hosts: tuple[str, ...]
    mirrors: tuple[str, ...]


class RegistryService:
    def __init__(self, store: Any, tmp_dir: Path, *, events: ImageEventPublisher = discard,
                 insecure_registries: tuple[str, ...] = (), mirrors: tuple[str, ...] = (),
                 connect_timeout: float = 15.0, read_timeout: float = 30.0, certs_dirs: tuple[Path, ...] = (),
                 max_concurrent_downloads: int = pull_mod.MAX_CONCURRENT_DOWNLOADS,
                 max_concurrent_uploads: int = push_mod.MAX_CONCURRENT_UPLOADS) -> None:
        """``store`` is the image service (images/service.py); ``events`` gets the pull and push
        events (on the event loop)."""
        self.store, self.tmp_dir, self.events = store, Path(tmp_dir), events
        self.certs_dirs = tuple(Path(d) for d in certs_dirs)  # <dir>/<host[:port]>/ as Docker's certs.d
        self.configure(insecure_registries=insecure_registries, mirrors=mirrors)
        self.downloads = TransferLimit(max_concurrent_downloads)
        self.uploads = TransferLimit(max_concurrent_uploads)
        self.limit_transfers(downloads=max_concurrent_downloads, uploads=max_concurrent_uploads)
        self.timeout = aiohttp.ClientTimeout(total=None, connect=connect_timeout, sock_connect=connect_timeout,
                                             sock_read=read_timeout)

    def configure(self, *, insecure_registries: tuple[str, ...], mirrors: tuple[str, ...]) -> None:
        """The insecure registries and Docker Hub mirrors (at start, and again at a reload)."""
        mirrors = tuple(normalize_mirror(m) for m in mirrors)  # checked before anything changes
        nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = [
            ipaddress.ip_network(c) for c in DEFAULT_INSECURE_CIDRS]
        hosts: set[str] = set()
        for item in insecure_registries:
            try:
                nets.append(ipaddress.ip_network(item.strip(), strict=False))
            except ValueError:
                hosts.add(server_hostname(item))
        self.insecure_nets, self.insecure_hosts, self.mirrors = nets, hosts, mirrors
        self._scheme: dict[str, str] = {}  # host → the base url that answered last time

    def limit_transfers(self, *, downloads: int, uploads: int) -> None:
        """The layers all pulls fetch and all pushes send at once, daemon-wide as dockerd (at start, and
        again at a reload: the next transfer to start follows the new limit)."""
        if downloads < 1 or uploads < 1:
            raise errors.InvalidArgument(f"invalid max concurrent transfers: {downloads} downloads, {uploads} uploads")
        self.max_concurrent_downloads, self.max_concurrent_uploads = downloads, uploads
        self.downloads.set_limit(downloads)
        self.uploads.set_limit(uploads)

    def settings(self) -> RegistrySettings:
        """What `docker info` shows of it (RegistryConfig)."""
        return RegistrySettings(insecure_cidrs=tuple(str(n) for n in self.insecure_nets),
                                insecure_hosts=tuple(sorted(self.insecure_hosts)), mirrors=self.mirrors)

    # ------------------------------------------------------------------ plumbing

    def session(self) -> aiohttp.ClientSession:
        """One HTTP session per operation (its connections are reused by the operation's requests)."""
        return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=16), timeout=self.timeout,
                                     auto_decompress=False, headers={"User-Agent": USER_AGENT})

    async def close(self) -> None:
        """Nothing is held between operations; kept for callers that close services."""

    async def is_insecure(self, host: str) -> bool:
        """localhost and loopback addresses, the insecure-registries entries (names, CIDRs)."""
        if host in self.insecure_hosts:
            return True
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        name = name.strip("[]")
        if name in self.insecure_hosts:
            return True
        try:
            addrs = [ipaddress.ip_address(name)]
        except ValueError:
            if name == "localhost":
                return True
            if len(self.insecure_nets) == len(DEFAULT_INSECURE_CIDRS):
                return False  # only loopback is listed: a name would need to resolve there, skip DNS
            try:
                infos = await asyncio.wait_for(asyncio.get_running_loop().getaddrinfo(name, None), 5)
            except (OSError, asyncio.TimeoutError):
                return False
            addrs = [ipaddress.ip_address(i[4][0]) for i in infos]
        return any(a in net for a in addrs for net in self.insecure_nets)

    async def endpoints(self, domain: str, *, push: bool = False) -> list[Endpoint]:
        if domain == DEFAULT_DOMAIN:
            eps = [] if push else [Endpoint(m, mirror=True) for m in self.mirrors]
            return eps + [Endpoint(DOCKER_HUB_REGISTRY)]
        if await self.is_insecure(domain):
            eps = [Endpoint(f"https://{domain}", verify_tls=False), Endpoint(f"http://{domain}")]
            if self._scheme.get(domain, "").startswith("http://"):
                eps.reverse()
            return eps
        return [Endpoint(f"https://{domain}", tls=await asyncio.to_thread(self.tls_context, domain))]

    def tls_context(self, domain: str) -> ssl.SSLContext | None:
        """Docker's certs.d for one registry: `*.crt` CAs added to the system's, `x.cert` + `x.key`
        client certificates; None when no directory names the host (the system's defaults)."""
        dirs = [d / domain for d in self.certs_dirs if (d / domain).is_dir()]
        if not dirs:
            return None
        ctx = ssl.create_default_context()
        try:
            for d in dirs:
                for ca in sorted(d.glob("*.crt")):
                    ctx.load_verify_locations(cafile=str(ca))
                for cert in sorted(d.glob("*.cert")):
                    key = cert.with_suffix(".key")
                    if not key.exists():
                        raise errors.InvalidArgument(f"missing key {key.name} for client certificate {cert.name}")
                    ctx.load_cert_chain(str(cert), str(key))
        except (ssl.SSLError, OSError, ValueError) as exc:
            raise errors.InvalidArgument(f"could not load the certificates of {domain} ({dirs[0]}): {exc}") from None
        return ctx

    async def _on_endpoints(self, http: aiohttp.ClientSession, domain: str, push: bool,
                            fn: Callable[[Endpoint], Awaitable[T]]) -> T:
        """Run ``fn`` on each endpoint until one can be reached (a mirror's failure of any kind falls
        through to the next, as dockerd does)."""
        last: BaseException | None = None
        eps = await self.endpoints(domain, push=push)
        for n, ep in enumerate(eps):
            if n + 1 < len(eps) and not ep.mirror and domain not in self._scheme and not await self._answers(http, ep):
                last = TransportError(f'Get "{ep.url}/v2/": the endpoint does not answer')
                continue  # probe first, so a fallback never repeats progress lines
            try:
                result = await fn(ep)
            except TransportError as exc:
                last = exc
                continue
            except (RegistryError, errors.ServinError) as exc:
                if ep.mirror:
                    last = exc
                    continue
                raise
            self._scheme[domain] = ep.url
            return result
        assert last is not None
        if isinstance(last, TransportError):
            raise errors.SystemError_(str(last))
        raise last

    async def _answers(self, http: aiohttp.ClientSession, ep: Endpoint) -> bool:
        try:
            limit = aiohttp.ClientTimeout(total=min(10.0, self.timeout.sock_read or 10.0))
            async with http.get(f"{ep.url}/v2/", ssl=ep.ssl, timeout=limit) as r:
                await r.read()
            return True
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
            return False

    @staticmethod
    def repository(http: aiohttp.ClientSession, ep: Endpoint, ref: Reference, creds: AuthConfig,
                   actions: tuple[str, ...] = ("pull",), extra_scopes: tuple[str, ...] = ()) -> Repository:
        return Repository(http, ep, ref.path, creds, actions, extra_scopes)

    # ------------------------------------------------------------------ pull

    async def pull(self, ref: Reference, creds: AuthConfig, platform: mf.Platform | None,
                   out: progress.Output, *, all_tags: bool = False) -> PullResult:
        """Pull one reference, or with ``all_tags`` (a name alone, ``docker pull -a``) every tag;
        a pull event (with the image's labels) once it is stored."""
        asked = ref
        if not all_tags:
            ref = ref.tag_name_only()

        async def one(repo: Repository, r: Reference) -> PullResult:
            try:
                resolved = await pull_mod.resolve(repo, r, platform)
                image_id, new = await pull_mod.pull_image(self.store, repo, r, resolved, out, self.tmp_dir,
                                                          platform, limit=self.downloads)
            except RegistryError as exc:
                raise translate_pull(exc, r.familiar(), r.familiar_name()) from None
            out.message("Digest: " + resolved.digest)
            return PullResult(image_id, resolved.digest, new)

        async def attempt(ep: Endpoint) -> PullResult:
            repo = self.repository(http, ep, ref, creds)
            if ref.tag is not None or ref.digest is not None:
                return await one(repo, ref)
            try:
                tags = await repo.tags()
            except RegistryError as exc:
                raise translate_pull(exc, ref.familiar(), ref.familiar_name()) from None
            result = PullResult("", "", False)
            for tag in tags:
                got = await one(repo, ref.with_tag(tag))
                result = PullResult(got.image_id, got.digest, result.downloaded or got.downloaded)
            return result

        async with self.session() as http:
            result = await self._on_endpoints(http, ref.domain, False, attempt)
        what = "Downloaded newer image for " if result.downloaded else "Image is up to date for "
        out.message("Status: " + what + ref.familiar())
        try:
            img = await asyncio.to_thread(self.store.get, str(asked))
            labels = dict(((img.config.get("config") or {}).get("Labels")) or {})
        except errors.ServinError:
            labels = {}
        self.events(_image_event("pull", asked, labels))
        return result

    # ------------------------------------------------------------------ push

    async def push(self, ref: Reference, creds: AuthConfig, out: progress.Output) -> list[push_mod.PushResult]:
        """Push one tag, or every tag of the repository; a push event per tag pushed."""
        out.message(f"The push refers to repository [{ref.name}]")
        pairs = await asyncio.to_thread(push_mod.images_to_push, self.store, ref)
        if not pairs:
            if ref.tag is not None and await asyncio.to_thread(_any_tag, self.store, ref):
                raise errors.NotFound(f"tag does not exist: {ref.familiar()}")
            raise errors.NotFound(f"An image does not exist locally with the tag: {ref.familiar_name()}")
        # mounts need pull access to the source repositories, asked for in the same token
        sources = set()
        for _, img in pairs:
            for d in img.diff_ids:
                for b in await asyncio.to_thread(self.store.blobs_for, d):
                    domain, _, path = b.repository.partition("/")
                    if domain == ref.domain and b.repository != ref.name:
                        sources.add(f"repository:{path}:pull")
        results = []
        for target, img in pairs:
            async def attempt(ep: Endpoint, target: Reference = target, img: Any = img) -> push_mod.PushResult:
                repo = self.repository(http, ep, target, creds, ("pull", "push"), tuple(sorted(sources)))
                try:
                    return await push_mod.push_tag(self.store, repo, target, img, out, limit=self.uploads)
                except RegistryError as exc:
                    raise _push_error(exc) from None

            async with self.session() as http:
                results.append(await self._on_endpoints(http, ref.domain, True, attempt))
        for r in results:
            self.events(_image_event("push", ref.name_only().with_tag(r.tag)))
        return results

    # ------------------------------------------------------------------ login

    async def login(self, creds: AuthConfig) -> str:
        """Check credentials against the registry; returns an identity token ("" when none)."""
        host = server_hostname(creds.server_address) if creds.server_address else ""
        if host in ("", "index.docker.io", "docker.io", "registry-1.docker.io"):
            host = DEFAULT_DOMAIN

        async def attempt(ep: Endpoint) -> str:
            repo = Repository(http, ep, "", creds)
            repo.scopes = ()
            await repo.ping(offline=True)
            return repo.state.refresh_token

        try:
            async with self.session() as http:
                return await self._on_endpoints(http, host, True, attempt)
        except RegistryError as exc:
            raise errors.Unauthorized(str(exc)) from None

    # ------------------------------------------------------------------ distribution inspect, search

    async def inspect(self, ref: Reference, creds: AuthConfig) -> dict[str, Any]:
        ref = ref.tag_name_only()

        async def attempt(ep: Endpoint) -> dict[str, Any]:
            repo = self.repository(http, ep, ref, creds)
            try:
                reference = ref.digest or ref.tag or "latest"
                raw, ctype, _ = await repo.get_manifest(reference, mf.ACCEPT)
                if ref.digest and not pull_mod.verify_digest(raw, ref.digest):
                    raise errors.SystemError_(f"manifest verification failed for digest {ref.digest}")
                top = mf.loads(raw)
                mt = mf.media_type_of(top, ctype)
                desc = {"mediaType": mt, "digest": ref.digest or "sha256:" + hashlib.sha256(raw).hexdigest(),
                        "size": len(raw)}
                platforms: list[dict[str, Any]] = []
                if mt in (mf.DOCKER_LIST, mf.OCI_INDEX):
                    for e in mf.index_entries(top):
                        if e.platform and e.platform.get("os") != "unknown":
                            platforms.append({k: v for k, v in e.platform.items() if v})
                elif mt in (mf.DOCKER_MANIFEST, mf.OCI_MANIFEST):
                    config_desc, _ = mf.image_parts(top)
                    cfg = json.loads(await repo.get_blob(config_desc.digest))
                    p = {"architecture": cfg.get("architecture", ""), "os": cfg.get("os", "")}
                    for k in ("os.version", "os.features", "variant"):
                        if cfg.get(k):
                            p[k] = cfg[k]
                    platforms.append(p)
                return {"Descriptor": desc, "Platforms": platforms}
            except RegistryError as exc:
                raise translate_pull(exc, ref.familiar(), ref.familiar_name()) from None

        async with self.session() as http:
            return await self._on_endpoints(http, ref.domain, False, attempt)

    async def search(self, term: str, limit: int, creds: AuthConfig,
                     filters: Mapping[str, Sequence[str]] | None = None) -> list[search_mod.SearchResult]:
        """The registry's v1 search API (Docker Hub's index, or the registry named in the term),
        narrowed by dockerd's search ``filters``."""
        domain, _, rest = term.partition("/")
        if rest and ("." in domain or ":" in domain or domain == "localhost"):
            remote = rest
        else:
            domain, remote = DEFAULT_DOMAIN, term
        if domain == DEFAULT_DOMAIN:
            bases = [DOCKER_HUB_INDEX]
        elif await self.is_insecure(domain):
            bases = [f"https://{domain}", f"http://{domain}"]
        else:
            bases = [f"https://{domain}"]
        query = urlencode({"q": remote, "n": str(limit)})
        async with self.session() as http:
            raw = await self._search(http, domain, bases, query)
        return search_mod.select(search_mod.parse_results(raw), filters or {})

    async def _search(self, http: aiohttp.ClientSession, domain: str, bases: list[str],
                      query: str) -> list[Any]:
        last = ""
        for base in bases:
            url = f"{base}/v1/search?{query}"
            try:
                async with http.get(url, ssl=False if base.startswith("https://") and domain != DEFAULT_DOMAIN
                                           else True, timeout=aiohttp.ClientTimeout(total=15)) as resp:
                    body = await resp.read()
                    if resp.status != 200:
                        raise errors.SystemError_(f'Unexpected status code {resp.status} from "{url}": '
                                                  f"the registry {domain} offers no search API")
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError) as exc:
                last = f'Get "{url}": {_short(exc)}'
                continue
            try:
                data = json.loads(body)
            except ValueError:
                raise errors.SystemError_(f'invalid search answer from "{url}"') from None
            return list(data.get("results") or []) if isinstance(data, dict) else []
        raise errors.SystemError_(last or f"cannot search {domain}")


def _short(exc: BaseException) -> str:
    """Go's wording of a transport error (as pulls word it), "context deadline exceeded" for
    search's own time limit."""
    if isinstance(exc, asyncio.TimeoutError):
        return "context deadline exceeded"
    return describe_transport_error(exc)


def _any_tag(store: Any, ref: Reference) -> bool:
    return bool(push_mod.images_to_push(store, ref.name_only()))


def _push_error(exc: RegistryError) -> errors.ServinError:
    if exc.code in ("DENIED", "UNAUTHORIZED"):
        return errors.SystemError_(str(exc) if exc.code == "UNAUTHORIZED"
                                   else "denied: requested access to the resource is denied")
    return errors.SystemError_(str(exc))
