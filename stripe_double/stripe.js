/*
 * A TEST STAND-IN FOR STRIPE.JS, NOT STRIPE.JS. Vetted's Stripe double serves it at /v3/ in place
 * of https://js.stripe.com/v3/ (docs/payments.md). It implements only what Vetted's pages call,
 * with Stripe.js's call shapes (https://docs.stripe.com/js):
 *
 *   const stripe = Stripe(publishableKey);
 *   const elements = stripe.elements({clientSecret, appearance});   // appearance is ignored
 *   elements.create("payment").mount("#payment-element");
 *   const {error} = await stripe.confirmPayment({elements, confirmParams: {return_url}, redirect});
 *   const {error} = await stripe.confirmSetup({elements, confirmParams: {return_url}, redirect});  // saving a card
 *
 * The "Payment Element" is three plain inputs on the page itself, not in an iframe as Stripe's is.
 * They have no `name`, so a form around them never posts the card to our server. Only the double's
 * test cards are known; any expiry and CVC will do.
 */
(function () {
  "use strict";

  // Calls go back to the origin this script came from: the double. Read it now; later it is gone.
  var API = new URL(document.currentScript.src).origin;

  var TEST_CARDS = {
    "4242424242424242": "pm_card_visa",
    "5555555555554444": "pm_card_mastercard",
    "4000000000000002": "pm_card_chargeDeclined",
    "4000000000009995": "pm_card_chargeDeclinedInsufficientFunds",
  };

  function integrationError(message) {
    var error = new Error(message);
    error.name = "IntegrationError";
    return error;
  }

  function labelledInput(text, autocomplete, placeholder) {
    var label = document.createElement("label");
    var input = document.createElement("input");
    input.type = "text";
    input.autocomplete = autocomplete;
    input.inputMode = "numeric";
    input.placeholder = placeholder;
    label.append(text, " ", input);
    return { label: label, input: input };
  }

  function PaymentElement() {
    this.inputs = null;
  }

  PaymentElement.prototype.mount = function (target) {
    var node = typeof target === "string" ? document.querySelector(target) : target;
    if (!node) {
      throw integrationError("mount(): no element matches " + target);
    }
    var number = labelledInput("Card number", "cc-number", "1234 1234 1234 1234");
    var expiry = labelledInput("Expiration date", "cc-exp", "MM / YY");
    var cvc = labelledInput("Security code (CVC)", "cc-csc", "CVC");
    var box = document.createElement("div");
    box.className = "stripe-double-payment-element";
    box.append(number.label, expiry.label, cvc.label);
    node.replaceChildren(box);
    this.inputs = { number: number.input, expiry: expiry.input, cvc: cvc.input };
  };

  function Elements(options) {
    var secret = (options && options.clientSecret) || "";
    if (!/^(pi|seti)_\w+_secret_\w+$/.test(secret)) {
      throw integrationError(
        "elements(): clientSecret should be a client secret of the form ${id}_secret_${secret}",
      );
    }
    this.clientSecret = secret;
    this.paymentElement = null;
  }

  Elements.prototype.create = function (type) {
    if (type !== "payment") {
      throw integrationError('create(): this stand-in has only the "payment" element');
    }
    this.paymentElement = new PaymentElement();
    return this.paymentElement;
  };

  function post(path, fields) {
    return fetch(API + path, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(fields),
    });
  }

  function returnUrl(url, intentId, secret, kind) {
    var target = new URL(url, window.location.href);
    target.searchParams.set(kind, intentId);
    target.searchParams.set(kind + "_client_secret", secret);
    target.searchParams.set("redirect_status", "succeeded");
    return target.href;
  }

  // confirmPayment and confirmSetup: the same steps on a PaymentIntent or a SetupIntent.
  async function confirm(publishableKey, options, kind) {
    var name = kind === "payment_intent" ? "confirmPayment()" : "confirmSetup()";
    var elements = options && options.elements;
    var element = elements && elements.paymentElement;
    if (!element || !element.inputs) {
      throw integrationError(name + ": pass the elements whose Payment Element is mounted");
    }
    var returnTo = options.confirmParams && options.confirmParams.return_url;
    if (!returnTo && options.redirect !== "if_required") {
      throw integrationError(name + ": confirmParams.return_url is required");
    }
    var number = element.inputs.number.value.replace(/\s+/g, "");
    var token = TEST_CARDS[number];
    if (!token) {
      return {
        error: {
          type: "validation_error",
          code: number ? "invalid_number" : "incomplete_number",
          message: number
            ? "Your card number is invalid. The Stripe double knows only its test cards (docs/payments.md)."
            : "Your card number is incomplete.",
        },
      };
    }
    var secret = elements.clientSecret;
    var intentId = secret.split("_secret_")[0];
    var answer;
    try {
      var response = await post("/v1/" + kind + "s/" + intentId + "/confirm", {
        payment_method: token,
        client_secret: secret,
        key: publishableKey,
      });
      answer = await response.json();
    } catch (failure) {
      return { error: { type: "api_connection_error", message: String(failure) } };
    }
    if (answer.error) {
      return { error: answer.error }; // a decline: {type: "card_error", code: "card_declined", message, ...}
    }
    if (options.redirect === "if_required") {
      return kind === "payment_intent" ? { paymentIntent: answer } : { setupIntent: answer };
    }
    window.location.assign(returnUrl(returnTo, intentId, secret, kind));
    return new Promise(function () {}); // as Stripe.js: the page is leaving, nothing to resolve
  }

  window.Stripe = function Stripe(publishableKey) {
    if (typeof publishableKey !== "string" || publishableKey.indexOf("pk_") !== 0) {
      throw integrationError("Stripe(): a publishable key (pk_...) is required");
    }
    return {
      elements: function (options) {
        return new Elements(options);
      },
      confirmPayment: function (options) {
        return confirm(publishableKey, options, "payment_intent");
      },
      confirmSetup: function (options) {
        return confirm(publishableKey, options, "setup_intent");
      },
    };
  };
})();
