/** @odoo-module **/
/**
 * MCP > Playground (client action "ocore_mcp.playground"): pick a tool, fill a form generated from its
 * input schema, run it through the real MCP pipeline as yourself (audited, transport "playground"), see
 * the result as text and JSON, the time it took, the exact JSON-RPC request and a curl line. Prompts
 * (prompts/get) and resources (a direct resource, or a template whose variables are filled in a form with
 * completion/complete suggestions) are read the same way; a blob is offered as a download.
 *
 * Stable imports only (17.0, 18.0, 19.0): @odoo/owl, @web/core/registry, @web/core/utils/hooks; the
 * server is reached through the orm service (ocore.mcp.playground methods), never a raw RPC route.
 */
import { Component, onWillStart, useState, xml } from "@odoo/owl";
import { registry } from "@web/core/registry";
import { useService } from "@web/core/utils/hooks";

const MODEL = "ocore.mcp.playground";
// the parameters every tool accepts, handled by the pipeline (kept last in the form)
const COMMON = ["confirm", "dry_run"];
const COMPLETION_DELAY_MS = 250;

function fieldType(schema) {
    if (!schema || typeof schema !== "object") {
        return "json";
    }
    if (Array.isArray(schema.enum)) {
        return "enum";
    }
    const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== "null") : schema.type;
    if (["string", "integer", "number", "boolean"].includes(type)) {
        return type;
    }
    return "json"; // arrays, objects, unions: typed as JSON
}

export class McpPlayground extends Component {
    static props = ["*"];
    static template = xml`
<div class="o_ocore_playground o_action h-100 overflow-auto p-3">
    <h2>MCP Playground</h2>
    <div t-if="state.loadError" class="alert alert-danger o_ocore_pg_load_error" t-esc="state.loadError"/>
    <div class="row g-3">
        <div class="col-lg-5">
            <div class="mb-2">
                <label class="form-label fw-bold" for="ocore_pg_key">API key</label>
                <select id="ocore_pg_key" class="form-select o_ocore_pg_key" t-on-change="onKeyChange">
                    <t t-foreach="state.keys" t-as="key" t-key="key.id">
                        <option t-att-value="key.id" t-att-selected="key.id === state.keyId">
                            <t t-esc="key.name"/><t t-if="key.read_only"> (read-only)</t>
                        </option>
                    </t>
                </select>
            </div>
            <div class="btn-group mb-2" role="group">
                <button type="button" t-attf-class="btn btn-sm o_ocore_pg_mode_tools {{ state.mode === 'tools' ? 'btn-primary' : 'btn-outline-primary' }}"
                        t-on-click="() => this.setMode('tools')">Tools</button>
                <button type="button" t-attf-class="btn btn-sm o_ocore_pg_mode_prompts {{ state.mode === 'prompts' ? 'btn-primary' : 'btn-outline-primary' }}"
                        t-on-click="() => this.setMode('prompts')">Prompts</button>
                <button type="button" t-attf-class="btn btn-sm o_ocore_pg_mode_resources {{ state.mode === 'resources' ? 'btn-primary' : 'btn-outline-primary' }}"
                        t-on-click="() => this.setMode('resources')">Resources</button>
            </div>
            <div class="mb-2">
                <label class="form-label fw-bold" for="ocore_pg_tool"><t t-if="state.mode === 'prompts'">Prompt</t><t t-elif="state.mode === 'resources'">Resource</t><t t-else="">Tool</t></label>
                <input class="form-control mb-1 o_ocore_pg_filter" placeholder="Filter"
                       t-att-value="state.filter" t-on-input="(ev) => state.filter = ev.target.value"/>
                <select id="ocore_pg_tool" class="form-select o_ocore_pg_tool" t-on-change="onToolChange">
                    <option value="">Choose (<t t-esc="items.length"/>)</option>
                    <t t-foreach="filteredTools" t-as="tool" t-key="tool.name">
                        <option t-att-value="tool.name" t-att-selected="tool.name === state.toolName"
                                t-esc="tool.label || tool.name"/>
                    </t>
                </select>
            </div>
            <t t-if="selectedTool">
                <p t-if="selectedTool.uriTemplate" class="mb-1"><code class="o_ocore_pg_uri" t-esc="selectedTool.uriTemplate"/></p>
                <p class="text-muted small o_ocore_pg_description" style="white-space: pre-wrap" t-esc="selectedTool.description"/>
                <form class="o_ocore_pg_form" t-on-submit.prevent="run">
                    <t t-foreach="fields" t-as="field" t-key="field.name">
                        <div class="mb-2" t-att-data-field="field.name">
                            <label class="form-label mb-0" t-att-for="'ocore_pg_f_' + field.name">
                                <code t-esc="field.name"/><span t-if="field.required" class="text-danger"> *</span>
                                <span class="text-muted small ms-1" t-esc="field.typeLabel"/>
                            </label>
                            <t t-if="field.type === 'boolean'">
                                <div class="form-check">
                                    <input type="checkbox" class="form-check-input" t-att-id="'ocore_pg_f_' + field.name"
                                           t-att-name="field.name" t-att-checked="state.values[field.name]"
                                           t-on-change="(ev) => state.values[field.name] = ev.target.checked"/>
                                </div>
                            </t>
                            <t t-elif="field.type === 'enum'">
                                <select class="form-select" t-att-id="'ocore_pg_f_' + field.name" t-att-name="field.name"
                                        t-on-change="(ev) => state.values[field.name] = ev.target.value">
                                    <option value=""/>
                                    <t t-foreach="field.schema.enum" t-as="choice" t-key="choice_index">
                                        <option t-att-value="choice" t-att-selected="isChosen(field, choice)"
                                                t-esc="choice"/>
                                    </t>
                                </select>
                            </t>
                            <t t-elif="field.type === 'json'">
                                <textarea class="form-control font-monospace" rows="2" t-att-id="'ocore_pg_f_' + field.name"
                                          t-att-name="field.name" t-att-placeholder="field.placeholder"
                                          t-att-value="fieldValue(field)"
                                          t-on-input="(ev) => state.values[field.name] = ev.target.value"/>
                            </t>
                            <t t-else="">
                                <input class="form-control" t-att-type="field.type === 'string' ? 'text' : 'number'"
                                       t-att-step="field.type === 'number' ? 'any' : '1'"
                                       t-att-id="'ocore_pg_f_' + field.name" t-att-name="field.name"
                                       t-att-value="fieldValue(field)" autocomplete="off"
                                       t-att-list="field.completes ? 'ocore_pg_dl_' + field.name : undefined"
                                       t-on-focus="() => field.completes and this.complete(field.name)"
                                       t-on-input="(ev) => this.onInput(field, ev.target.value)"/>
                                <datalist t-if="field.completes" t-att-id="'ocore_pg_dl_' + field.name"
                                          t-attf-class="o_ocore_pg_suggestions_{{ field.name }}">
                                    <t t-foreach="state.suggestions[field.name] or []" t-as="suggestion" t-key="suggestion_index">
                                        <option t-att-value="suggestion"/>
                                    </t>
                                </datalist>
                            </t>
                            <div t-if="field.description" class="form-text" t-esc="field.description"/>
                            <div t-if="state.errors[field.name]" class="text-danger small o_ocore_pg_field_error"
                                 t-esc="state.errors[field.name]"/>
                        </div>
                    </t>
                    <button type="submit" class="btn btn-primary o_ocore_pg_run" t-att-disabled="state.running">
                        <t t-if="state.running">Running…</t><t t-elif="state.mode === 'resources'">Read</t><t t-else="">Run</t>
                    </button>
                </form>
            </t>
        </div>
        <div class="col-lg-7">
            <div t-if="state.callError" class="alert alert-danger o_ocore_pg_call_error" t-esc="state.callError"/>
            <t t-if="state.result">
                <div class="d-flex align-items-center gap-2 mb-2">
                    <span t-attf-class="badge o_ocore_pg_status {{ state.result.is_error ? 'text-bg-danger' : 'text-bg-success' }}"
                          t-esc="state.result.is_error ? 'Error' : 'Success'"/>
                    <span class="o_ocore_pg_elapsed"><t t-esc="state.result.elapsed_ms"/> ms</span>
                </div>
                <div t-if="state.result.contents" class="mb-2 o_ocore_pg_contents">
                    <t t-foreach="state.result.contents" t-as="content" t-key="content_index">
                        <div class="small o_ocore_pg_content" t-att-data-kind="content.kind">
                            <code t-esc="content.uri"/>
                            <span class="badge text-bg-secondary ms-1 o_ocore_pg_mime" t-esc="content.mime_type or '?'"/>
                            <span class="ms-1 o_ocore_pg_size"><t t-esc="content.size"/> bytes</span>
                            <a t-if="content.kind === 'blob'" class="ms-2 o_ocore_pg_download"
                               t-att-href="'data:' + (content.mime_type or 'application/octet-stream') + ';base64,' + content.blob"
                               t-att-download="downloadName(content)">Download</a>
                            <span t-if="content.truncated" class="ms-1 text-muted">(shown in part)</span>
                        </div>
                    </t>
                </div>
                <ul class="nav nav-tabs mb-2">
                    <t t-foreach="tabs" t-as="tab" t-key="tab[0]">
                        <li class="nav-item">
                            <a href="#" t-attf-class="nav-link o_ocore_pg_tab_{{ tab[0] }} {{ state.tab === tab[0] ? 'active' : '' }}"
                               t-on-click.prevent="() => state.tab = tab[0]" t-esc="tab[1]"/>
                        </li>
                    </t>
                </ul>
                <pre class="border rounded p-2 bg-light o_ocore_pg_output" style="white-space: pre-wrap; max-height: 60vh; overflow: auto"
                     t-esc="output"/>
            </t>
        </div>
    </div>
</div>`;

    setup() {
        this.orm = useService("orm");
        this.state = useState({
            keys: [], keyId: null, tools: [], prompts: [], resources: [], mode: "tools", filter: "", toolName: "",
            values: {}, errors: {}, suggestions: {}, running: false, result: null, callError: "", loadError: "",
            tab: "text",
        });
        this.completionTimers = {};
        this.tabs = [["text", "Text"], ["json", "JSON"], ["request", "Request"], ["curl", "curl"], ["response", "Response"]];
        onWillStart(() => this.loadKeys());
    }

    async loadKeys() {
        try {
            this.state.keys = await this.orm.call(MODEL, "ocore_playground_keys", []);
            this.state.keyId = this.state.keys.length ? this.state.keys[0].id : null;
            await this.loadTools();
        } catch (error) {
            this.state.loadError = this.errorText(error);
        }
    }

    async loadTools() {
        this.state.tools = [];
        if (!this.state.keyId) {
            return;
        }
        const result = await this.orm.call(MODEL, "ocore_playground_tools", [this.state.keyId]);
        this.state.tools = result.tools;
        if (!this.selectedTool) {
            this.state.toolName = "";
        }
    }

    errorText(error) {
        return (error && error.data && error.data.message) || (error && error.message) || String(error);
    }

    async onKeyChange(ev) {
        this.state.keyId = parseInt(ev.target.value, 10);
        this.state.loadError = "";
        try {
            await this.loadTools();
            if (this.state.mode === "prompts") {
                await this.loadPrompts();
            } else if (this.state.mode === "resources") {
                await this.loadResources();
            }
        } catch (error) {
            this.state.loadError = this.errorText(error);
        }
    }

    onToolChange(ev) {
        this.state.toolName = ev.target.value;
        this.state.values = {};
        this.state.errors = {};
        this.state.suggestions = {};
        this.state.result = null;
        this.state.callError = "";
        for (const field of this.fields) {
            if (field.schema.default !== undefined && field.schema.default !== null) {
                this.state.values[field.name] = field.type === "json" ? JSON.stringify(field.schema.default)
                    : field.schema.default;
            }
        }
    }

    fieldValue(field) {
        const value = this.state.values[field.name];
        return value === undefined || value === null ? "" : value;
    }

    isChosen(field, choice) {
        const value = this.state.values[field.name];
        return value !== undefined && value !== null && String(value) === String(choice);
    }

    get items() {
        if (this.state.mode === "prompts") {
            return this.state.prompts;
        }
        return this.state.mode === "resources" ? this.state.resources : this.state.tools;
    }

    get filteredTools() {
        const needle = this.state.filter.trim().toLowerCase();
        return needle ? this.items.filter((t) => (t.label || t.name).toLowerCase().includes(needle)) : this.items;
    }

    get selectedTool() {
        return this.items.find((t) => t.name === this.state.toolName);
    }

    async setMode(mode) {
        this.state.mode = mode;
        this.state.toolName = "";
        this.state.result = null;
        this.state.callError = "";
        try {
            if (mode === "prompts") {
                await this.loadPrompts();
            } else if (mode === "resources") {
                await this.loadResources();
            }
        } catch (error) {
            this.state.loadError = this.errorText(error);
        }
    }

    async loadResources() {
        const result = await this.orm.call(MODEL, "ocore_playground_resources", [this.state.keyId]);
        // the option's value is the URI (template); a template's variables make the form (all strings)
        const direct = result.resources.map((resource) => ({
            name: resource.uri, uri: resource.uri, label: `${resource.title || resource.name} (${resource.uri})`,
            description: resource.description || "", inputSchema: { type: "object", properties: {} },
        }));
        const templates = result.templates.map((template) => ({
            name: template.uriTemplate, uriTemplate: template.uriTemplate,
            label: `${template.title || template.name} (${template.uriTemplate})`,
            description: template.description || "",
            inputSchema: {
                type: "object",
                properties: Object.fromEntries(template.variables.map((variable) => [variable.name, {
                    type: "string", completes: true,
                    description: variable.required ? "" : "optional (query parameter)",
                }])),
                required: template.variables.filter((variable) => variable.required).map((variable) => variable.name),
            },
        }));
        this.state.resources = [...direct, ...templates];
    }

    onInput(field, value) {
        this.state.values[field.name] = value;
        if (field.completes) {
            clearTimeout(this.completionTimers[field.name]);
            this.completionTimers[field.name] = setTimeout(() => this.complete(field.name), COMPLETION_DELAY_MS);
        }
    }

    async complete(name) {
        const template = this.selectedTool && this.selectedTool.uriTemplate;
        if (!template) {
            return;
        }
        try {
            const result = await this.orm.call(MODEL, "ocore_playground_complete", [
                this.state.keyId, template, name, this.state.values[name] || "", { ...this.state.values },
            ]);
            if (this.selectedTool && this.selectedTool.uriTemplate === template) {
                this.state.suggestions[name] = result.values;
            }
        } catch {
            // suggestions are a help: the field stays usable without them
        }
    }

    downloadName(content) {
        const mime = content.mime_type || "";
        const extension = mime === "application/pdf" ? ".pdf" : mime.startsWith("text/") ? ".txt" : "";
        const base = (content.uri || "resource").replace(/^[a-z]+:\/\//, "").replace(/[^A-Za-z0-9._-]+/g, "_");
        return base + extension;
    }

    async loadPrompts() {
        const result = await this.orm.call(MODEL, "ocore_playground_prompts", [this.state.keyId]);
        // a prompt's arguments are strings: the same form, from a schema made of them
        this.state.prompts = result.prompts.map((prompt) => ({
            name: prompt.name,
            description: prompt.description || "",
            inputSchema: {
                type: "object",
                properties: Object.fromEntries((prompt.arguments || []).map(
                    (arg) => [arg.name, { type: "string", description: arg.description || "" }])),
                required: (prompt.arguments || []).filter((arg) => arg.required).map((arg) => arg.name),
            },
        }));
    }

    get fields() {
        const schema = (this.selectedTool && this.selectedTool.inputSchema) || {};
        const required = new Set(schema.required || []);
        const names = Object.keys(schema.properties || {});
        names.sort((a, b) => COMMON.includes(a) - COMMON.includes(b));
        return names.map((name) => {
            const prop = schema.properties[name] || {};
            const type = fieldType(prop);
            let typeLabel = type === "json" ? (prop.type || "JSON") : type;
            if (Array.isArray(typeLabel)) {
                typeLabel = typeLabel.join(" | ");
            }
            return {
                name, schema: prop, type, typeLabel, required: required.has(name), description: prop.description || "",
                completes: Boolean(prop.completes),
                placeholder: prop.type === "array" ? "[ … ] (JSON)" : prop.type === "object" ? "{ … } (JSON)" : "JSON",
            };
        });
    }

    buildArguments() {
        const args = {};
        const errors = {};
        for (const field of this.fields) {
            const raw = this.state.values[field.name];
            if (field.type === "boolean") {
                if (raw !== undefined) {
                    args[field.name] = Boolean(raw);
                }
                continue;
            }
            if (raw === undefined || raw === null || String(raw).trim() === "") {
                if (field.required) {
                    errors[field.name] = "Required";
                }
                continue;
            }
            const text = String(raw).trim();
            if (field.type === "integer" || field.type === "number") {
                const number = Number(text);
                if (Number.isNaN(number) || (field.type === "integer" && !Number.isInteger(number))) {
                    errors[field.name] = `Not ${field.type === "integer" ? "an integer" : "a number"}`;
                } else {
                    args[field.name] = number;
                }
            } else if (field.type === "json") {
                try {
                    args[field.name] = JSON.parse(text);
                } catch {
                    errors[field.name] = "Not valid JSON";
                }
            } else if (field.type === "enum") {
                const choice = field.schema.enum.find((c) => String(c) === text);
                args[field.name] = choice === undefined ? text : choice;
            } else {
                args[field.name] = text;
            }
        }
        return { args, errors };
    }

    async run() {
        const { args, errors } = this.buildArguments();
        this.state.errors = errors;
        if (Object.keys(errors).length) {
            return;
        }
        this.state.running = true;
        this.state.callError = "";
        try {
            if (this.state.mode === "resources") {
                const item = this.selectedTool;
                this.state.result = await this.orm.call(MODEL, "ocore_playground_read", [
                    this.state.keyId, item.uri || null, item.uriTemplate || null, args,
                ]);
            } else {
                const method = this.state.mode === "prompts" ? "ocore_playground_prompt" : "ocore_playground_call";
                this.state.result = await this.orm.call(MODEL, method, [this.state.keyId, this.state.toolName, args]);
            }
        } catch (error) {
            this.state.result = null;
            this.state.callError = this.errorText(error);
        } finally {
            this.state.running = false;
        }
    }

    get output() {
        const result = this.state.result;
        if (!result) {
            return "";
        }
        switch (this.state.tab) {
            case "json":
                return JSON.stringify(result.structured ?? null, null, 2);
            case "request":
                return JSON.stringify(result.request, null, 2);
            case "curl":
                return result.curl;
            case "response":
                return JSON.stringify(result.response, null, 2);
            default:
                return result.text;
        }
    }
}

registry.category("actions").add("ocore_mcp.playground", McpPlayground);
