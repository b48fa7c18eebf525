"""Scrapy settings for darkarchive: every component is switched on here and only here."""

from __future__ import annotations

import os

# Scrapy's cookie handling (tldextract) would fetch the public-suffix list from the internet
# on first use; an empty URL list makes it use its bundled copy and make no request at all.
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")

BOT_NAME = "darkarchive"
SPIDER_MODULES = ["crawler.spiders"]
NEWSPIDER_MODULE = "crawler.spiders"

# Passive and polite: identify as a generic browser, no robots.txt round trip to a market
# (markets have none worth honouring and the request is one more fingerprint), modest load.
USER_AGENT = "Mozilla/5.0 (Windows NT 10.0; rv:128.0) Gecko/20100101 Firefox/128.0"
ROBOTSTXT_OBEY = False
CONCURRENT_REQUESTS = 16
CONCURRENT_REQUESTS_PER_DOMAIN = 4  # a source's politeness.concurrency replaces it
# Responses waiting for the spider and the pipelines (Scrapy's default: 5 MB, a thousand
# market pages): past this many bytes no new request starts. While the archive writes a
# batch (seconds on a busy database), at most this much is fetched and not yet archived.
SCRAPER_SLOT_MAX_ACTIVE_SIZE = 32 * 1024
# A page gives one item and its new links. Scrapy 2.19 starts CONCURRENT_ITEMS tasks for
# every response's output (its default, 100, most of them only to stop again), 12 % of the
# crawl's CPU on demo-large (bench/README.md, "Fewer tasks per response").
CONCURRENT_ITEMS = 8
DOWNLOAD_DELAY = 0
DOWNLOAD_TIMEOUT = 60
RETRY_ENABLED = True
RETRY_TIMES = 2
# 429 and 503 are answered by the challenge middleware (Retry-After, jittered backoff).
RETRY_HTTP_CODES = [500, 502, 504, 522, 524, 408]
# Every status reaches the spider so that it is recorded with its page state.
HTTPERROR_ALLOW_ALL = True
# HTML only: nothing larger than a page is ever downloaded.
DOWNLOAD_MAXSIZE = 16 * 1024 * 1024
DOWNLOAD_WARNSIZE = 4 * 1024 * 1024
MEDIA_ALLOW_REDIRECTS = False
COOKIES_DEBUG = False
# No live back door into a crawl: Scrapy's telnet console and its remote control (2.19, on
# by default: an HTTP endpoint on loopback that runs Python code, its token in a job file
# under the user's home) would let any local reader of that file drive a crawl holding
# the database URI and the session cookies. Both stay off, Tor crawls included.
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False
LOG_LEVEL = "INFO"
# SIGTERM/SIGINT stop a crawl cleanly; if that has not finished after this many seconds (a
# stuck page, a hung request), the run is closed `interrupted` and the process exits (6).
SHUTDOWN_FORCE_AFTER = 15.0

DOWNLOADER_MIDDLEWARES = {
    # On --resume: pages the run already archived come from the archive, before any routing.
    "crawler.middlewares.resume.ResumeFromArchive": 1,
    "crawler.middlewares.tor_routing.TorRouting": 5,
    "crawler.middlewares.onion_guard.OnionGuard": 10,
    "crawler.middlewares.content_types.ContentTypeGuard": 50,
    # Scrapy's offsite policy, with each refusal (off-site, file:, data:, a redirect loop)
    # recorded on the run instead of a DEBUG line.
    "scrapy.downloadermiddlewares.offsite.OffsiteMiddleware": None,
    "crawler.middlewares.refusals.RecordedOffsite": 50,
    # process_exception runs from the downloader outwards: this one sees a failure before
    # the retry middleware (550) decides whether to retry it.
    "crawler.middlewares.tor_health.TorCircuitHealth": 560,
    # Responses pass it after cookies (700) were stored and bodies decompressed (590).
    "crawler.middlewares.challenges.ChallengeHandling": 580,
    # Exceptions reach it after the retry middleware (550) has given up on a mirror.
    "crawler.middlewares.mirrors.MirrorFailover": 540,
}

EXTENSIONS = {
    # Pages fetched against pages expected: a live bar on a terminal, else a line every
    # PROGRESS_INTERVAL seconds (PROGRESS_LIVE forces either; PROGRESS_ENABLED=False: off).
    "crawler.extensions.progress.CrawlProgress": 500,
}
PROGRESS_INTERVAL = 30.0

ITEM_PIPELINES = {
    "pipelines.normalise_pipeline.NormalisePipeline": 300,
    "pipelines.archive_pipeline.ArchivePipeline": 800,
}

# The archive: an explicit URI (embedded server started by the CLI) or MONGODB_URI from the
# environment; with neither, the pipeline starts the embedded server on ARCHIVE_DATA_DIR.
ARCHIVE_MONGO_URI = ""
ARCHIVE_DB_NAME = ""  # empty: DARKARCHIVE_DB, else "darkarchive"
ARCHIVE_DATA_DIR = ""  # empty: $DARKARCHIVE_HOME/mongo, else ./var/mongo
# Entities written together. A batch holds the writer thread while it writes; with 200 a
# first crawl's batch held it ~0.4 s, the writer queue filled and fetching stopped (day 1 of
# demo-large in alternated pairs: 45.0 and 46.6 s at 200, 41.6 and 40.7 s at 50; bench/README).
ARCHIVE_BATCH_SIZE = 50
# Fetched pages (records and bodies) are written in a bulk once the oldest has waited this
# many seconds or this many wait (checked as pages come, and once the writer thread has
# been idle that long): a crawl killed outright (SIGKILL, power loss) fetches again on
# --resume only those, the pages queued for the writer, the responses waiting for the
# spider and the few still downloading. A few pages a bulk: no slower than 1 s bulks on the demo.
ARCHIVE_PAGE_MAX_AGE = 0.1
ARCHIVE_PAGE_BATCH = 10
# Every database write runs on one writer thread per crawl, in order, so fetching never
# waits on the store (False: on the reactor thread, as before). Up to ARCHIVE_WRITER_QUEUE
# pages may wait for it; past that a page is answered once written, which stops new
# fetches: memory stays flat and a killed crawl refetches at most that many more pages.
# 32, not 16: 8-12 % more pages/s on demo-large, side by side (bench/README.md, "A longer
# writer queue"); 64 gained less.
ARCHIVE_WRITER_THREAD = True
ARCHIVE_WRITER_QUEUE = 32

# Tor, for sources with `network: tor`. The CLI starts or checks tor (config/tor.yaml) and
# fills these in; left empty, a Tor source fetches nothing. Addresses only, never a secret.
TOR_SOCKS = ""  # "127.0.0.1:9050"
TOR_CONTROL = ""  # "127.0.0.1:9051", for NEWNYM
TOR_CONTROL_COOKIE_FILE = ""
TOR_CONTROL_PASSWORD_ENV = ""  # the name of the variable holding the password
TOR_CONTROL_PASSWORD_FILE = ""
TOR_UNAVAILABLE = ""  # why the CLI could not get a working tor; recorded on the failed run
TOR_DOWNLOAD_HANDLER = "crawler.tor.handler.TorDownloadHandler"  # speaks SOCKS5 (socks5h)
TOR_BACKOFF_BASE = 1.0  # seconds; a failed request waits up to base·2^attempt before retry
TOR_BACKOFF_MAX = 60.0

REQUEST_FINGERPRINTER_IMPLEMENTATION = "2.7"
# A page is the same page on every mirror of a source: fetched once.
REQUEST_FINGERPRINTER_CLASS = "crawler.middlewares.mirrors.MirrorBlindFingerprinter"
TWISTED_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"
FEED_EXPORT_ENCODING = "utf-8"
