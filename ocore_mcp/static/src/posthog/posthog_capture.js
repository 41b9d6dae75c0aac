/** @odoo-module **/
/**
 * Web client capture for PostHog (oCore MCP monitoring), loaded in web.assets_backend of 17.0, 18.0 and
 * 19.0: plain ES module code on stable APIs only (the service registry, the session, the menu service
 * and its MENUS:APP-CHANGED bus event), browser APIs feature-detected.
 *
 * It runs only when the server turned capture on (session.ocore_posthog, see ir.http.session_info) and
 * reports, batched, to the server's relay (never to PostHog directly: the project key, the PostHog host
 * and the user's address stay on the server, which adds the user identifier itself):
 * - $pageview on load and on every route change (history API, hash changes);
 * - odoo_module_open when the current app changes (module usage: the module of the app's root menu);
 * - $web_vitals: LCP, INP, CLS (and FCP) from PerformanceObserver, once per page, when it is hidden;
 * - $exception: uncaught errors and unhandled promise rejections (type; message only with personal data);
 * - odoo_rpc_timings: per endpoint, count, total and max duration of the RPCs (Resource Timing).
 */

import { registry } from "@web/core/registry";
import { session } from "@web/session";

const SESSION_KEY = "ocore_posthog_session";
const SESSION_IDLE_MS = 30 * 60 * 1000;
const MAX_EXCEPTIONS = 20;
const MAX_QUEUE = 500;
// /web/dataset/call_kw/<model>/<method> (the same in 17.0, 18.0 and 19.0)
const CALL_KW = new RegExp("^/web/dataset/call_(?:kw|button)/([^/]+)/([^/]+)");
const VARIABLE_SEGMENT = new RegExp("/(?:[0-9a-f]{16,}|[0-9]+)(?=/|$)", "g");
const RPC_PREFIXES = ["/web/dataset/", "/web/action/", "/json/", "/jsonrpc", "/mail/", "/web/webclient/"];

function newId() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") {
        return window.crypto.randomUUID();
    }
    return "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx".replace(/[xy]/g, (c) => {
        const r = (Math.random() * 16) | 0;
        return (c === "x" ? r : (r & 0x3) | 0x8).toString(16);
    });
}

function readSession() {
    try {
        return JSON.parse(window.localStorage.getItem(SESSION_KEY) || "null");
    } catch {
        return null;
    }
}

/** PostHog's $session_id: one per browser, renewed after 30 minutes without activity. */
function sessionId() {
    const now = Date.now();
    let stored = readSession();
    if (!stored || typeof stored.id !== "string" || now - (stored.last || 0) > SESSION_IDLE_MS) {
        stored = { id: newId() };
    }
    stored.last = now;
    try {
        window.localStorage.setItem(SESSION_KEY, JSON.stringify(stored));
    } catch {
        // storage full or disabled: the id lives for this page only
    }
    return stored.id;
}

function observe(type, callback, options = {}) {
    const supported = (window.PerformanceObserver && PerformanceObserver.supportedEntryTypes) || [];
    if (!supported.includes(type)) {
        return null;
    }
    try {
        const observer = new PerformanceObserver((list) => callback(list.getEntries()));
        observer.observe({ type, buffered: true, ...options });
        return observer;
    } catch {
        return null;
    }
}

/** The module of an app: the first part of its root menu's XML id (sale.sale_menu_root -> sale). */
function appModule(app) {
    if (!app) {
        return undefined;
    }
    const xmlid = app.xmlid || "";
    return xmlid.includes(".") ? xmlid.split(".")[0] : xmlid || app.name;
}

function rpcEndpoint(url) {
    let parsed;
    try {
        parsed = new URL(url, window.location.href);
    } catch {
        return null;
    }
    if (parsed.origin !== window.location.origin) {
        return null;
    }
    const path = parsed.pathname;
    if (!RPC_PREFIXES.some((prefix) => path.startsWith(prefix))) {
        return null;
    }
    const callKw = path.match(CALL_KW);
    // hashes and ids out of the path (/web/webclient/load_menus/<hash>): one endpoint per route
    return callKw ? `${callKw[1]}.${callKw[2]}` : path.replace(VARIABLE_SEGMENT, "/:id").slice(0, 128);
}

export class PosthogCapture {
    constructor(config, menu, bus) {
        this.config = config;
        this.menu = menu;
        this.queue = [];
        this.exceptions = 0;
        this.lastRoute = null;
        this.rpc = new Map();
        this.vitals = {};
        this.vitalsSent = false;
        this.cls = { value: 0, window: 0, first: 0, last: 0 };
        this.interactions = new Map();
        if (bus && bus.addEventListener) {
            bus.addEventListener("MENUS:APP-CHANGED", () => this.onAppChanged());
        }
    }

    start() {
        this.watchRoutes();
        this.watchErrors();
        this.watchVitals();
        observe("resource", (entries) => this.onResources(entries));
        const interval = Math.max(1000, Number(this.config.flush_interval_ms) || 10000);
        window.setInterval(() => this.flush(false), interval);
        const onHidden = () => {
            if (document.visibilityState === "hidden") {
                this.reportVitals();
                this.flush(true);
            }
        };
        document.addEventListener("visibilitychange", onHidden);
        window.addEventListener("pagehide", () => {
            this.reportVitals();
            this.flush(true);
        });
        this.checkRoute();
    }

    currentApp() {
        try {
            return this.menu && this.menu.getCurrentApp ? this.menu.getCurrentApp() : undefined;
        } catch {
            return undefined;
        }
    }

    capture(event, properties = {}) {
        if (this.queue.length >= MAX_QUEUE) {
            return;
        }
        const app = this.currentApp();
        this.queue.push({
            event,
            timestamp: new Date().toISOString(),
            properties: {
                $session_id: sessionId(),
                $current_url: window.location.href,
                $pathname: window.location.pathname,
                odoo_module: appModule(app),
                odoo_app: app ? app.name : undefined,
                ...properties,
            },
        });
    }

    // -- page views and module usage ------------------------------------------------------------

    watchRoutes() {
        const schedule = () => window.setTimeout(() => this.checkRoute(), 300);
        for (const method of ["pushState", "replaceState"]) {
            const original = window.history[method];
            if (typeof original !== "function") {
                continue;
            }
            window.history[method] = function (...args) {
                const result = original.apply(this, args);
                schedule();
                return result;
            };
        }
        window.addEventListener("popstate", schedule);
        window.addEventListener("hashchange", schedule);
    }

    checkRoute() {
        const route = window.location.pathname + window.location.hash;
        if (route === this.lastRoute) {
            return;
        }
        this.lastRoute = route;
        this.capture("$pageview", { $screen_width: window.screen.width, $screen_height: window.screen.height });
    }

    onAppChanged() {
        const app = this.currentApp();
        if (app) {
            this.capture("odoo_module_open", { odoo_menu_id: app.id });
        }
    }

    // -- errors -----------------------------------------------------------------------------------

    watchErrors() {
        window.addEventListener("error", (ev) => {
            const error = ev.error;
            this.captureError((error && error.name) || "Error", (error && error.message) || ev.message);
        });
        window.addEventListener("unhandledrejection", (ev) => {
            const reason = ev.reason || {};
            const type = reason.exceptionName || (reason.data && reason.data.name) || reason.name || "UnhandledRejection";
            this.captureError(String(type), reason.message || String(reason));
        });
    }

    captureError(type, message) {
        if (this.exceptions >= MAX_EXCEPTIONS) {
            return;
        }
        this.exceptions += 1;
        const properties = { $exception_type: type };
        if (this.config.personal_data && message) {
            properties.$exception_message = String(message).slice(0, 500);
        }
        this.capture("$exception", properties);
    }

    // -- Core Web Vitals --------------------------------------------------------------------------

    watchVitals() {
        observe("largest-contentful-paint", (entries) => {
            const last = entries[entries.length - 1];
            if (last) {
                this.vitals.LCP = last.renderTime || last.startTime;
            }
        });
        observe("paint", (entries) => {
            for (const entry of entries) {
                if (entry.name === "first-contentful-paint") {
                    this.vitals.FCP = entry.startTime;
                }
            }
        });
        // CLS: the largest session window of layout shifts (gaps under 1 s, windows under 5 s); 0 until one
        const shifts = observe("layout-shift", (entries) => {
            const cls = this.cls;
            for (const entry of entries) {
                if (entry.hadRecentInput) {
                    continue;
                }
                if (cls.window && entry.startTime - cls.last < 1000 && entry.startTime - cls.first < 5000) {
                    cls.window += entry.value;
                } else {
                    cls.window = entry.value;
                    cls.first = entry.startTime;
                }
                cls.last = entry.startTime;
                cls.value = Math.max(cls.value, cls.window);
            }
            this.vitals.CLS = cls.value;
        });
        if (shifts && this.vitals.CLS === undefined) {
            this.vitals.CLS = 0;
        }
        // INP: the longest interaction (p98 once there are 50 or more), from Event Timing
        const onEvents = (entries) => {
            for (const entry of entries) {
                if (!entry.interactionId) {
                    continue;
                }
                const known = this.interactions.get(entry.interactionId) || 0;
                this.interactions.set(entry.interactionId, Math.max(known, entry.duration));
            }
            const durations = [...this.interactions.values()].sort((a, b) => b - a);
            if (durations.length) {
                this.vitals.INP = durations[Math.min(durations.length - 1, Math.floor(durations.length / 50))];
            }
        };
        observe("event", onEvents, { durationThreshold: 16 });
        observe("first-input", onEvents);
    }

    reportVitals() {
        if (this.vitalsSent || !Object.keys(this.vitals).length) {
            return;
        }
        this.vitalsSent = true;
        const properties = {};
        for (const [name, value] of Object.entries(this.vitals)) {
            properties[`$web_vitals_${name}_value`] = value;
        }
        this.capture("$web_vitals", properties);
    }

    // -- RPC durations ----------------------------------------------------------------------------

    onResources(entries) {
        for (const entry of entries) {
            if (entry.initiatorType !== "fetch" && entry.initiatorType !== "xmlhttprequest") {
                continue;
            }
            if (entry.name.includes(this.config.relay)) {
                continue;
            }
            const endpoint = rpcEndpoint(entry.name);
            if (!endpoint) {
                continue;
            }
            const stats = this.rpc.get(endpoint) || { count: 0, total: 0, max: 0 };
            stats.count += 1;
            stats.total += entry.duration;
            stats.max = Math.max(stats.max, entry.duration);
            this.rpc.set(endpoint, stats);
        }
    }

    drainRpcTimings() {
        for (const [endpoint, stats] of this.rpc.entries()) {
            this.capture("odoo_rpc_timings", {
                odoo_endpoint: endpoint,
                rpc_count: stats.count,
                rpc_total_ms: Math.round(stats.total),
                rpc_max_ms: Math.round(stats.max),
            });
        }
        this.rpc.clear();
    }

    // -- sending ----------------------------------------------------------------------------------

    flush(leaving) {
        this.drainRpcTimings();
        if (!this.queue.length) {
            return;
        }
        const events = this.queue.splice(0, 100);
        const body = JSON.stringify({ events });
        const url = this.config.relay;
        try {
            if (leaving && navigator.sendBeacon) {
                const blob = new Blob([body], { type: "application/json" });
                if (navigator.sendBeacon(url, blob)) {
                    return;
                }
            }
            window
                .fetch(url, {
                    method: "POST",
                    headers: { "Content-Type": "application/json" },
                    body,
                    credentials: "same-origin",
                    keepalive: body.length < 60000,
                })
                .catch(() => {});
        } catch {
            // monitoring never disturbs the web client
        }
        if (this.queue.length) {
            this.flush(leaving);
        }
    }
}

export const posthogCaptureService = {
    dependencies: ["menu"],
    start(env, { menu }) {
        const config = session.ocore_posthog;
        if (!config || !config.capture || !config.relay) {
            return null;
        }
        const capture = new PosthogCapture(config, menu, env.bus);
        try {
            capture.start();
        } catch {
            return null;
        }
        return capture;
    },
};

registry.category("services").add("ocore_posthog", posthogCaptureService);
