import Hummingbird

/// `GET /openapi.json`: the OpenAPI 3.1 description of every route the server registers. The
/// same document is kept in the repository as docs/openapi.json; `OpenAPITests` checks that the
/// two are equal and that the document's paths are exactly the server's routes, and scripts/test
/// runs schemathesis against a live engine with it.
enum OpenAPIDocument {
    static let json = #"""
{
  "openapi": "3.1.0",
  "info": {
    "title": "Sidobot",
    "version": "1",
    "description": "The HTTP API of sidobot run: Sidobe's webhooks, hooks from other tools, health, metrics, the admin API and the status pages (docs/OPERATING.md)."
  },
  "servers": [
    {
      "url": "http://127.0.0.1:8080"
    }
  ],
  "paths": {
    "/webhooks/sidobe": {
      "post": {
        "summary": "Sidobe's delivery-status webhook",
        "responses": {
          "200": {
            "description": "journaled before the answer: accepted, or duplicate (seen in the last 7 days)",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Accepted"
                }
              }
            }
          },
          "400": {
            "description": "the id cannot be read, or the body is not a webhook (the field at fault)",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "401": {
            "description": "missing or bad X-Webhook-Signature",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "413": {
            "description": "the body is larger than 1 MiB",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "503": {
            "description": "not ready, shutting down, or (with --confirm-status) Sidobe could not be asked",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          }
        },
        "security": [
          {
            "webhookSignature": []
          }
        ],
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "$ref": "#/components/schemas/Webhook"
              }
            }
          }
        }
      }
    },
    "/hooks/{name}": {
      "post": {
        "summary": "An event from another tool: hook.NAME with the body",
        "responses": {
          "202": {
            "description": "journaled; dispatched to the rules listening for hook.NAME",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Accepted"
                }
              }
            }
          },
          "400": {
            "description": "a bad hook name or an unreadable body",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "401": {
            "description": "missing or wrong bearer token",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "403": {
            "description": "no SIDOBOT_ADMIN_TOKEN configured: hooks are off",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "413": {
            "description": "the body is larger than 1 MiB",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "503": {
            "description": "not ready yet, or shutting down",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          }
        },
        "security": [
          {
            "bearer": []
          }
        ],
        "parameters": [
          {
            "name": "name",
            "in": "path",
            "required": true,
            "schema": {
              "type": "string",
              "pattern": "^[A-Za-z0-9_.-]{1,64}$"
            },
            "description": "letters, digits, _, - and ."
          }
        ],
        "requestBody": {
          "required": false,
          "content": {
            "application/json": {
              "schema": {}
            },
            "*/*": {
              "schema": {}
            }
          }
        }
      }
    },
    "/healthz": {
      "get": {
        "summary": "Liveness",
        "responses": {
          "200": {
            "description": "the process serves HTTP",
            "content": {
              "application/json": {
                "schema": {
                  "type": "object",
                  "properties": {
                    "status": {
                      "type": "string",
                      "const": "ok"
                    }
                  },
                  "required": [
                    "status"
                  ]
                }
              }
            }
          }
        },
        "security": []
      }
    },
    "/readyz": {
      "get": {
        "summary": "Readiness",
        "responses": {
          "200": {
            "description": "the rules are loaded and the journal replayed",
            "content": {
              "application/json": {
                "schema": {
                  "type": "object",
                  "properties": {
                    "status": {
                      "type": "string",
                      "const": "ready"
                    }
                  },
                  "required": [
                    "status"
                  ]
                }
              }
            }
          },
          "503": {
            "description": "starting, or shutting down",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          }
        },
        "security": []
      }
    },
    "/metrics": {
      "get": {
        "summary": "Prometheus metrics (text format 0.0.4)",
        "responses": {
          "200": {
            "description": "every family with HELP and TYPE",
            "content": {
              "text/plain": {
                "schema": {
                  "type": "string"
                }
              }
            }
          }
        },
        "security": []
      }
    },
    "/openapi.json": {
      "get": {
        "summary": "This document",
        "responses": {
          "200": {
            "description": "OpenAPI 3.1",
            "content": {
              "application/json": {
                "schema": {
                  "type": "object"
                }
              }
            }
          }
        },
        "security": []
      }
    },
    "/ui": {
      "get": {
        "summary": "The status page (its data comes from /api/… with the token typed into it)",
        "responses": {
          "200": {
            "description": "an HTML page",
            "content": {
              "text/html": {
                "schema": {
                  "type": "string"
                }
              }
            }
          }
        },
        "security": []
      }
    },
    "/ui/app.css": {
      "get": {
        "summary": "The status page's style sheet",
        "responses": {
          "200": {
            "description": "CSS",
            "content": {
              "text/css": {
                "schema": {
                  "type": "string"
                }
              }
            }
          }
        },
        "security": []
      }
    },
    "/ui/app.js": {
      "get": {
        "summary": "The status page's script",
        "responses": {
          "200": {
            "description": "JavaScript",
            "content": {
              "text/javascript": {
                "schema": {
                  "type": "string"
                }
              }
            }
          }
        },
        "security": []
      }
    },
    "/ui/plain": {
      "get": {
        "summary": "The status page rendered on the server, without JavaScript",
        "responses": {
          "200": {
            "description": "an HTML page",
            "content": {
              "text/html": {
                "schema": {
                  "type": "string"
                }
              }
            }
          },
          "401": {
            "description": "the admin token is needed (WWW-Authenticate: Basic)",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "403": {
            "description": "no SIDOBOT_ADMIN_TOKEN configured",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "503": {
            "description": "starting: not ready yet",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          }
        },
        "security": [
          {
            "bearer": []
          },
          {
            "basic": []
          }
        ]
      }
    },
    "/api/rules": {
      "get": {
        "summary": "The loaded rules and the last reload",
        "responses": {
          "200": {
            "description": "every field present, null when empty",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Rules"
                }
              }
            }
          },
          "401": {
            "description": "missing or wrong bearer token",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "403": {
            "description": "no SIDOBOT_ADMIN_TOKEN configured: the admin API is off",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "503": {
            "description": "starting: not ready yet",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          }
        },
        "security": [
          {
            "bearer": []
          }
        ]
      }
    },
    "/api/rules/reload": {
      "post": {
        "summary": "Reload the rules folder now",
        "responses": {
          "200": {
            "description": "every file loaded or unchanged",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Reload"
                }
              }
            }
          },
          "422": {
            "description": "a file failed to load: its previous version keeps running",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Reload"
                }
              }
            }
          },
          "401": {
            "description": "missing or wrong bearer token",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "403": {
            "description": "no SIDOBOT_ADMIN_TOKEN configured: the admin API is off",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "503": {
            "description": "starting: not ready yet",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          }
        },
        "security": [
          {
            "bearer": []
          }
        ]
      }
    },
    "/api/timers": {
      "get": {
        "summary": "Pending timers by due time",
        "responses": {
          "200": {
            "description": "",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Timers"
                }
              }
            }
          },
          "401": {
            "description": "missing or wrong bearer token",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "403": {
            "description": "no SIDOBOT_ADMIN_TOKEN configured: the admin API is off",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "503": {
            "description": "starting: not ready yet",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          }
        },
        "security": [
          {
            "bearer": []
          }
        ]
      }
    },
    "/api/messages": {
      "get": {
        "summary": "Recent messages of the ledger, newest first",
        "responses": {
          "200": {
            "description": "",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Messages"
                }
              }
            }
          },
          "400": {
            "description": "limit is not a whole number from 1 to 1000",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "401": {
            "description": "missing or wrong bearer token",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "403": {
            "description": "no SIDOBOT_ADMIN_TOKEN configured: the admin API is off",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "503": {
            "description": "starting: not ready yet",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          }
        },
        "security": [
          {
            "bearer": []
          }
        ],
        "parameters": [
          {
            "name": "limit",
            "in": "query",
            "required": false,
            "schema": {
              "type": "integer",
              "minimum": 1,
              "maximum": 1000
            },
            "description": "how many (default 50)"
          },
          {
            "name": "status",
            "in": "query",
            "required": false,
            "schema": {
              "type": "string"
            },
            "description": "only this status, e.g. UNKNOWN: the sends in doubt"
          }
        ]
      }
    },
    "/api/messages/{id}": {
      "get": {
        "summary": "One message of the ledger with its status history",
        "responses": {
          "200": {
            "description": "",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Message"
                }
              }
            }
          },
          "404": {
            "description": "not in the ledger",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "401": {
            "description": "missing or wrong bearer token",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "403": {
            "description": "no SIDOBOT_ADMIN_TOKEN configured: the admin API is off",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "503": {
            "description": "starting: not ready yet",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          }
        },
        "security": [
          {
            "bearer": []
          }
        ],
        "parameters": [
          {
            "name": "id",
            "in": "path",
            "required": true,
            "schema": {
              "type": "string",
              "minLength": 1
            },
            "description": "a message id"
          }
        ]
      }
    },
    "/api/messages/{id}/resolve": {
      "post": {
        "summary": "Decide a message in doubt (UNKNOWN): it was delivered, or not",
        "responses": {
          "200": {
            "description": "the record after the change",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Message"
                }
              }
            }
          },
          "400": {
            "description": "the body is not {\"status\":\"SUCCESS\"} or {\"status\":\"FAILED\"}",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "404": {
            "description": "not in the ledger",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "409": {
            "description": "not in doubt",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "401": {
            "description": "missing or wrong bearer token",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "403": {
            "description": "no SIDOBOT_ADMIN_TOKEN configured: the admin API is off",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "503": {
            "description": "starting: not ready yet",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          }
        },
        "security": [
          {
            "bearer": []
          }
        ],
        "parameters": [
          {
            "name": "id",
            "in": "path",
            "required": true,
            "schema": {
              "type": "string",
              "minLength": 1
            },
            "description": "a message id"
          }
        ],
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "type": "object",
                "properties": {
                  "status": {
                    "type": "string",
                    "enum": [
                      "SUCCESS",
                      "FAILED"
                    ]
                  }
                },
                "required": [
                  "status"
                ]
              }
            }
          }
        }
      }
    },
    "/api/state/{rule}": {
      "get": {
        "summary": "A rule's state: its keys and values",
        "responses": {
          "200": {
            "description": "a JSON object",
            "content": {
              "application/json": {
                "schema": {
                  "type": "object"
                }
              }
            }
          },
          "404": {
            "description": "no such rule",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "401": {
            "description": "missing or wrong bearer token",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "403": {
            "description": "no SIDOBOT_ADMIN_TOKEN configured: the admin API is off",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "503": {
            "description": "starting: not ready yet",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          }
        },
        "security": [
          {
            "bearer": []
          }
        ],
        "parameters": [
          {
            "name": "rule",
            "in": "path",
            "required": true,
            "schema": {
              "type": "string",
              "minLength": 1
            },
            "description": "a rule's name"
          }
        ]
      }
    },
    "/api/traces": {
      "get": {
        "summary": "The most recent traces, newest first",
        "responses": {
          "200": {
            "description": "",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Traces"
                }
              }
            }
          },
          "400": {
            "description": "limit is not a whole number from 1 to 1000",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "401": {
            "description": "missing or wrong bearer token",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "403": {
            "description": "no SIDOBOT_ADMIN_TOKEN configured: the admin API is off",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "503": {
            "description": "starting: not ready yet",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          }
        },
        "security": [
          {
            "bearer": []
          }
        ],
        "parameters": [
          {
            "name": "limit",
            "in": "query",
            "required": false,
            "schema": {
              "type": "integer",
              "minimum": 1,
              "maximum": 1000
            },
            "description": "how many (default 50)"
          }
        ]
      }
    },
    "/api/traces/{id}": {
      "get": {
        "summary": "The traces of an event, or of every event that concerned a message",
        "responses": {
          "200": {
            "description": "",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Traces"
                }
              }
            }
          },
          "404": {
            "description": "no trace (kept 24 h and 64 MiB)",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "401": {
            "description": "missing or wrong bearer token",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "403": {
            "description": "no SIDOBOT_ADMIN_TOKEN configured: the admin API is off",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "503": {
            "description": "starting: not ready yet",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          }
        },
        "security": [
          {
            "bearer": []
          }
        ],
        "parameters": [
          {
            "name": "id",
            "in": "path",
            "required": true,
            "schema": {
              "type": "string",
              "minLength": 1
            },
            "description": "an event id (may contain /) or a message id"
          }
        ]
      }
    },
    "/api/dead-letters": {
      "get": {
        "summary": "Failed handler runs and exhausted sends, oldest first",
        "responses": {
          "200": {
            "description": "",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/DeadLetters"
                }
              }
            }
          },
          "401": {
            "description": "missing or wrong bearer token",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "403": {
            "description": "no SIDOBOT_ADMIN_TOKEN configured: the admin API is off",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "503": {
            "description": "starting: not ready yet",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          }
        },
        "security": [
          {
            "bearer": []
          }
        ]
      }
    },
    "/api/dead-letters/{id}/replay": {
      "post": {
        "summary": "Send a dead letter's event again to the rule that failed on it",
        "responses": {
          "202": {
            "description": "",
            "content": {
              "application/json": {
                "schema": {
                  "type": "object",
                  "properties": {
                    "replayed": {
                      "type": "string"
                    }
                  },
                  "required": [
                    "replayed"
                  ]
                }
              }
            }
          },
          "404": {
            "description": "no such dead letter",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "401": {
            "description": "missing or wrong bearer token",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "403": {
            "description": "no SIDOBOT_ADMIN_TOKEN configured: the admin API is off",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "503": {
            "description": "starting: not ready yet",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          }
        },
        "security": [
          {
            "bearer": []
          }
        ],
        "parameters": [
          {
            "name": "id",
            "in": "path",
            "required": true,
            "schema": {
              "type": "string",
              "minLength": 1
            },
            "description": "a dead letter id"
          }
        ]
      }
    },
    "/api/overview": {
      "get": {
        "summary": "The status page's figures",
        "responses": {
          "200": {
            "description": "",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Overview"
                }
              }
            }
          },
          "401": {
            "description": "missing or wrong bearer token",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "403": {
            "description": "no SIDOBOT_ADMIN_TOKEN configured: the admin API is off",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "503": {
            "description": "starting: not ready yet",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          }
        },
        "security": [
          {
            "bearer": []
          }
        ]
      }
    }
  },
  "components": {
    "schemas": {
      "Error": {
        "type": "object",
        "properties": {
          "error": {
            "type": "string"
          }
        },
        "required": [
          "error"
        ]
      },
      "Accepted": {
        "type": "object",
        "properties": {
          "event_id": {
            "type": "string"
          },
          "status": {
            "type": "string",
            "enum": [
              "accepted",
              "duplicate"
            ]
          }
        },
        "required": [
          "event_id",
          "status"
        ]
      },
      "RuleLoadFailure": {
        "type": "object",
        "properties": {
          "rule": {
            "type": [
              "string",
              "null"
            ]
          },
          "path": {
            "type": "string"
          },
          "line": {
            "type": [
              "integer",
              "null"
            ]
          },
          "message": {
            "type": "string"
          },
          "error": {
            "type": "string"
          },
          "at": {
            "type": "string",
            "description": "ISO 8601 UTC, milliseconds"
          },
          "previous_version_runs": {
            "type": "boolean"
          }
        },
        "required": [
          "rule",
          "path",
          "line",
          "message",
          "error",
          "at",
          "previous_version_runs"
        ]
      },
      "Rule": {
        "type": "object",
        "properties": {
          "name": {
            "type": "string"
          },
          "path": {
            "type": "string"
          },
          "description": {
            "type": [
              "string",
              "null"
            ]
          },
          "events": {
            "type": "array",
            "items": {
              "type": "string"
            }
          },
          "schedules": {
            "type": "array",
            "items": {
              "type": "object",
              "properties": {
                "key": {
                  "type": "string"
                },
                "next": {
                  "type": [
                    "string",
                    "null"
                  ]
                }
              },
              "required": [
                "key"
              ]
            }
          },
          "runs": {
            "type": "integer"
          },
          "errors": {
            "type": "integer"
          },
          "aborts": {
            "type": "integer"
          },
          "limits_hit": {
            "type": "object",
            "additionalProperties": {
              "type": "integer"
            }
          },
          "quarantined": {
            "type": "boolean"
          },
          "last_error": {
            "type": [
              "string",
              "null"
            ]
          },
          "loaded_at": {
            "type": "string",
            "description": "ISO 8601 UTC, milliseconds"
          },
          "memory_bytes": {
            "type": "integer"
          },
          "load_error": {
            "oneOf": [
              {
                "$ref": "#/components/schemas/RuleLoadFailure"
              },
              {
                "type": "null"
              }
            ]
          }
        },
        "required": [
          "name",
          "path",
          "description",
          "events",
          "schedules",
          "runs",
          "errors",
          "aborts",
          "limits_hit",
          "quarantined",
          "last_error",
          "loaded_at",
          "memory_bytes",
          "load_error"
        ]
      },
      "Rules": {
        "type": "object",
        "properties": {
          "rules": {
            "type": "array",
            "items": {
              "$ref": "#/components/schemas/Rule"
            }
          },
          "reload": {
            "type": "object",
            "properties": {
              "at": {
                "type": [
                  "string",
                  "null"
                ]
              },
              "successful": {
                "type": "boolean"
              },
              "failed": {
                "type": "array",
                "items": {
                  "$ref": "#/components/schemas/RuleLoadFailure"
                }
              }
            },
            "required": [
              "at",
              "successful",
              "failed"
            ]
          }
        },
        "required": [
          "rules",
          "reload"
        ]
      },
      "RuleError": {
        "type": "object",
        "properties": {
          "path": {
            "type": "string"
          },
          "line": {
            "type": "integer"
          },
          "message": {
            "type": "string"
          },
          "error": {
            "type": "string"
          }
        },
        "required": [
          "path",
          "message",
          "error"
        ]
      },
      "Reload": {
        "type": "object",
        "properties": {
          "loaded": {
            "type": "array",
            "items": {
              "type": "string"
            }
          },
          "unchanged": {
            "type": "array",
            "items": {
              "type": "string"
            }
          },
          "removed": {
            "type": "array",
            "items": {
              "type": "string"
            }
          },
          "failed": {
            "type": "array",
            "items": {
              "$ref": "#/components/schemas/RuleError"
            }
          }
        },
        "required": [
          "loaded",
          "unchanged",
          "removed",
          "failed"
        ]
      },
      "Timer": {
        "type": "object",
        "properties": {
          "id": {
            "type": "string"
          },
          "rule": {
            "type": "string"
          },
          "name": {
            "type": "string"
          },
          "payload": {
            "description": "any JSON value"
          },
          "due": {
            "type": "string",
            "description": "ISO 8601 UTC, milliseconds"
          },
          "created_at": {
            "type": "string",
            "description": "ISO 8601 UTC, milliseconds"
          }
        },
        "required": [
          "id",
          "rule",
          "name",
          "payload",
          "due",
          "created_at"
        ]
      },
      "Timers": {
        "type": "object",
        "properties": {
          "timers": {
            "type": "array",
            "items": {
              "$ref": "#/components/schemas/Timer"
            }
          }
        },
        "required": [
          "timers"
        ]
      },
      "Message": {
        "type": "object",
        "properties": {
          "id": {
            "type": "string"
          },
          "phone": {
            "type": "string"
          },
          "message": {
            "type": "string"
          },
          "image_url": {
            "type": "string"
          },
          "document_url": {
            "type": "string"
          },
          "document_name": {
            "type": "string"
          },
          "message_type": {
            "type": "string"
          },
          "rule": {
            "type": "string"
          },
          "key": {
            "type": "string"
          },
          "implicit_key": {
            "type": "string"
          },
          "attempt": {
            "type": "integer"
          },
          "resend_of": {
            "type": "string"
          },
          "status": {
            "type": "string",
            "enum": [
              "PENDING",
              "SUCCESS",
              "FAILED",
              "DRY_RUN",
              "UNKNOWN"
            ]
          },
          "sent_at": {
            "type": "string",
            "description": "ISO 8601 UTC, milliseconds"
          },
          "is_async": {
            "type": "boolean"
          },
          "history": {
            "type": "array",
            "items": {
              "type": "object",
              "properties": {
                "status": {
                  "type": "string"
                },
                "at": {
                  "type": "string",
                  "description": "ISO 8601 UTC, milliseconds"
                },
                "source": {
                  "type": "string"
                }
              },
              "required": [
                "status",
                "at",
                "source"
              ]
            }
          }
        },
        "required": [
          "id",
          "phone",
          "message_type",
          "rule",
          "attempt",
          "status",
          "sent_at",
          "history"
        ]
      },
      "Messages": {
        "type": "object",
        "properties": {
          "messages": {
            "type": "array",
            "items": {
              "$ref": "#/components/schemas/Message"
            }
          }
        },
        "required": [
          "messages"
        ]
      },
      "Trace": {
        "type": "object",
        "properties": {
          "event_id": {
            "type": "string"
          },
          "event": {
            "type": "string"
          },
          "at": {
            "type": "string",
            "description": "ISO 8601 UTC, milliseconds"
          },
          "summary": {
            "type": "string"
          },
          "notes": {
            "type": "array",
            "items": {
              "type": "string"
            }
          },
          "message_ids": {
            "type": "array",
            "items": {
              "type": "string"
            }
          },
          "text": {
            "type": "string"
          },
          "rules": {
            "type": "array",
            "items": {
              "type": "object",
              "properties": {
                "rule": {
                  "type": "string"
                },
                "outcome": {
                  "type": "string",
                  "enum": [
                    "ran",
                    "error",
                    "aborted",
                    "skipped",
                    "running",
                    "cancelled"
                  ]
                },
                "detail": {
                  "type": "string"
                },
                "actions": {
                  "type": "array",
                  "items": {
                    "type": "string"
                  }
                },
                "started_at": {
                  "type": "string",
                  "description": "ISO 8601 UTC, milliseconds"
                },
                "finished_at": {
                  "type": "string",
                  "description": "ISO 8601 UTC, milliseconds"
                },
                "duration_ms": {
                  "type": "integer"
                }
              },
              "required": [
                "rule",
                "outcome",
                "actions",
                "started_at"
              ]
            }
          }
        },
        "required": [
          "event_id",
          "event",
          "at",
          "summary",
          "notes",
          "message_ids",
          "rules"
        ]
      },
      "Traces": {
        "type": "object",
        "properties": {
          "traces": {
            "type": "array",
            "items": {
              "$ref": "#/components/schemas/Trace"
            }
          }
        },
        "required": [
          "traces"
        ]
      },
      "DeadLetter": {
        "type": "object",
        "properties": {
          "id": {
            "type": "string"
          },
          "rule": {
            "type": "string"
          },
          "event_id": {
            "type": "string"
          },
          "event": {
            "type": "string"
          },
          "reason": {
            "type": "string",
            "enum": [
              "error",
              "limit",
              "send"
            ]
          },
          "error": {
            "type": "string"
          },
          "at": {
            "type": "string",
            "description": "ISO 8601 UTC, milliseconds"
          }
        },
        "required": [
          "id",
          "rule",
          "event_id",
          "event",
          "reason",
          "error",
          "at"
        ]
      },
      "DeadLetters": {
        "type": "object",
        "properties": {
          "dead_letters": {
            "type": "array",
            "items": {
              "$ref": "#/components/schemas/DeadLetter"
            }
          }
        },
        "required": [
          "dead_letters"
        ]
      },
      "Overview": {
        "type": "object",
        "properties": {
          "now": {
            "type": "string",
            "description": "ISO 8601 UTC, milliseconds"
          },
          "outbox_depth": {
            "type": "integer"
          },
          "active_runs": {
            "type": "integer"
          },
          "timers_pending": {
            "type": "integer"
          },
          "rules": {
            "type": "integer"
          },
          "rules_quarantined": {
            "type": "integer"
          },
          "handler_runs": {
            "type": "integer"
          },
          "handler_errors": {
            "type": "integer"
          },
          "handler_aborts": {
            "type": "integer"
          },
          "dead_letters": {
            "type": "integer"
          },
          "messages": {
            "type": "integer"
          },
          "messages_by_status": {
            "type": "object",
            "additionalProperties": {
              "type": "integer"
            }
          },
          "sent_last_minute": {
            "type": "integer"
          },
          "sent_last_5_minutes": {
            "type": "integer"
          },
          "stores": {
            "type": "object",
            "additionalProperties": {
              "type": "object",
              "properties": {
                "records": {
                  "type": "integer"
                },
                "estimated_bytes": {
                  "type": [
                    "integer",
                    "null"
                  ]
                }
              },
              "required": [
                "records",
                "estimated_bytes"
              ]
            }
          },
          "resident_bytes": {
            "type": [
              "integer",
              "null"
            ]
          },
          "memory_budget_bytes": {
            "type": [
              "integer",
              "null"
            ]
          }
        },
        "required": [
          "now",
          "outbox_depth",
          "active_runs",
          "timers_pending",
          "rules",
          "rules_quarantined",
          "handler_runs",
          "handler_errors",
          "handler_aborts",
          "dead_letters",
          "messages",
          "messages_by_status",
          "sent_last_minute",
          "sent_last_5_minutes",
          "stores",
          "resident_bytes",
          "memory_budget_bytes"
        ]
      },
      "Webhook": {
        "type": "object",
        "description": "A Sidobe webhook: the signature covers its id. Strict JSON (RFC 8259). A type other than SEND_MESSAGE_STATUS is accepted too and reaches rules as sidobe.TYPE with its data as sent.",
        "properties": {
          "id": {
            "type": "string"
          },
          "created_at": {
            "type": "string",
            "description": "ISO 8601 with offset"
          },
          "event": {
            "type": "string"
          },
          "data": {}
        },
        "required": [
          "id",
          "created_at",
          "event"
        ],
        "if": {
          "properties": {
            "event": {
              "const": "SEND_MESSAGE_STATUS"
            }
          },
          "required": [
            "event"
          ]
        },
        "then": {
          "required": [
            "data"
          ],
          "properties": {
            "data": {
              "type": "object",
              "properties": {
                "whatsapp_message_id": {
                  "type": "string"
                },
                "status": {
                  "type": "string",
                  "description": "PENDING, SUCCESS, FAILED (others are kept as sent)"
                },
                "send_at": {
                  "type": "string"
                },
                "message_type": {
                  "type": "string"
                }
              },
              "required": [
                "whatsapp_message_id",
                "status",
                "send_at",
                "message_type"
              ]
            }
          }
        }
      }
    },
    "securitySchemes": {
      "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "SIDOBOT_ADMIN_TOKEN"
      },
      "basic": {
        "type": "http",
        "scheme": "basic",
        "description": "any user name, SIDOBOT_ADMIN_TOKEN as the password (/ui/plain only)"
      },
      "webhookSignature": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Webhook-Signature",
        "description": "hex(sha256(SIDOBE_SECRET_KEY + \"|\" + the body's id))"
      }
    }
  }
}
"""#
}

extension SidobotHTTPServer {
    func addOpenAPIRoute(to router: RouteTable) {
        router.get("/openapi.json") { _, _ in
            var headers = HTTPFields()
            headers[.contentType] = "application/json"
            return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: OpenAPIDocument.json)))
        }
    }
}
